//! Host unit tests of the kernel module's pure logic: `rust/order.rs` is
//! compiled here as it is into the module, and tested with `cargo test`.

#[path = "../../../rust/order.rs"]
#[allow(dead_code)]
mod order;

#[cfg(test)]
mod tests {
    use super::order::{span_meets_range, tree_is_warm, Key, ZonePick};

    fn k(objectid: u64, type_: u8, offset: u64) -> Key {
        Key {
            objectid,
            type_,
            offset,
        }
    }

    #[test]
    fn keys_order_by_objectid_type_offset() {
        assert!(k(1, 255, 255) < k(2, 0, 0));
        assert!(k(5, 1, 999) < k(5, 2, 0));
        assert!(k(5, 2, 0) < k(5, 2, 1));
        assert!(k(u64::MAX, 254, u64::MAX) < Key::MAX);
        assert_eq!(Key::default(), k(0, 0, 0));
    }

    #[test]
    fn span_inside_range_meets_it() {
        assert!(span_meets_range(
            k(10, 0, 0),
            k(20, 0, 0),
            k(0, 0, 0),
            Key::MAX
        ));
        assert!(span_meets_range(
            k(10, 0, 0),
            k(20, 0, 0),
            k(12, 0, 0),
            k(13, 0, 0)
        ));
    }

    #[test]
    fn span_bounds_are_half_open() {
        // The span [10, 20) ends where the range [20, 30) begins: no overlap.
        assert!(!span_meets_range(
            k(10, 0, 0),
            k(20, 0, 0),
            k(20, 0, 0),
            k(30, 0, 0)
        ));
        // The range [0, 10) ends where the span begins: no overlap.
        assert!(!span_meets_range(
            k(10, 0, 0),
            k(20, 0, 0),
            k(0, 0, 0),
            k(10, 0, 0)
        ));
        // One key of overlap on either side.
        assert!(span_meets_range(
            k(10, 0, 0),
            k(20, 0, 0),
            k(19, 255, u64::MAX),
            k(30, 0, 0)
        ));
        assert!(span_meets_range(
            k(10, 0, 0),
            k(20, 0, 0),
            k(0, 0, 0),
            k(10, 0, 1)
        ));
    }

    #[test]
    fn span_meets_range_agrees_with_brute_force() {
        // Small key space: objectid only, every span and range of 0..8.
        for lo in 0..8u64 {
            for hi in lo + 1..9 {
                for s in 0..8u64 {
                    for e in s + 1..9 {
                        let brute = (lo..hi).any(|x| (s..e).contains(&x));
                        let got =
                            span_meets_range(k(lo, 0, 0), k(hi, 0, 0), k(s, 0, 0), k(e, 0, 0));
                        assert_eq!(got, brute, "span [{lo},{hi}) range [{s},{e})");
                    }
                }
            }
        }
    }

    #[test]
    fn unlocked_zone_beats_fuller_locked_zone() {
        let free = ZonePick::new(0, 1, 100);
        let locked = ZonePick::new(1, 1000, 200);
        assert!(free > locked);
    }

    #[test]
    fn fuller_zone_wins_among_equals() {
        assert!(ZonePick::new(0, 10, 100) > ZonePick::new(0, 9, 900));
        assert!(ZonePick::new(2, 10, 100) > ZonePick::new(1, 9, 900));
    }

    #[test]
    fn zone_keys_of_a_device_are_unique() {
        // Same lock state and count, different zones: distinct, totally ordered.
        let a = ZonePick::new(0, 5, 100);
        let b = ZonePick::new(0, 5, 200);
        assert_ne!(a, b);
        assert!(b > a);
    }

    #[test]
    fn best_zone_is_the_maximum() {
        let zones = [
            ZonePick::new(1, 50, 1), // most blocks, but a peer reads it
            ZonePick::new(0, 3, 2),
            ZonePick::new(0, 7, 3), // the pick
            ZonePick::new(0, 0, 4),
        ];
        assert_eq!(zones.iter().max(), Some(&zones[2]));
    }

    #[test]
    fn a_tree_is_warm_while_at_most_one_lookup_in_five_misses() {
        assert!(tree_is_warm(0, 0), "no lookups yet");
        assert!(tree_is_warm(1000, 0));
        assert!(tree_is_warm(4, 1));
        assert!(!tree_is_warm(3, 1));
        assert!(!tree_is_warm(0, 1), "the first lookup missed");
        // A cold extent tree whose root and first node mount left in
        // memory: one node's children, mostly not.
        assert!(!tree_is_warm(2 + 10, 110));
        assert!(!tree_is_warm(u64::MAX, u64::MAX));
        assert!(tree_is_warm(u64::MAX, u64::MAX / 4));
    }
}
