//! Tree names and btrfs keys as typed on the command line.

use crate::uapi::BtrfsIoctlReadaKey;

/// Well-known trees: (name, btrfs object id).
pub const TREES: &[(&str, u64)] = &[
    ("root", 1),
    ("extent", 2),
    ("chunk", 3),
    ("dev", 4),
    ("fs", 5),
    ("csum", 7),
    ("quota", 8),
    ("uuid", 9),
    ("free-space", 10),
    ("block-group", 11),
];

/// btrfs key type names (without the `BTRFS_` prefix and `_KEY` suffix) and
/// their values, from `include/uapi/linux/btrfs_tree.h`.
pub const KEY_TYPES: &[(&str, u8)] = &[
    ("INODE_ITEM", 1),
    ("INODE_REF", 12),
    ("INODE_EXTREF", 13),
    ("XATTR_ITEM", 24),
    ("VERITY_DESC_ITEM", 36),
    ("VERITY_MERKLE_ITEM", 37),
    ("ORPHAN_ITEM", 48),
    ("DIR_LOG_ITEM", 60),
    ("DIR_LOG_INDEX", 72),
    ("DIR_ITEM", 84),
    ("DIR_INDEX", 96),
    ("EXTENT_DATA", 108),
    ("EXTENT_CSUM", 128),
    ("ROOT_ITEM", 132),
    ("ROOT_BACKREF", 144),
    ("ROOT_REF", 156),
    ("EXTENT_ITEM", 168),
    ("METADATA_ITEM", 169),
    ("EXTENT_OWNER_REF", 172),
    ("TREE_BLOCK_REF", 176),
    ("EXTENT_DATA_REF", 178),
    ("SHARED_BLOCK_REF", 182),
    ("SHARED_DATA_REF", 184),
    ("BLOCK_GROUP_ITEM", 192),
    ("FREE_SPACE_INFO", 198),
    ("FREE_SPACE_EXTENT", 199),
    ("FREE_SPACE_BITMAP", 200),
    ("DEV_EXTENT", 204),
    ("DEV_ITEM", 216),
    ("CHUNK_ITEM", 228),
    ("RAID_STRIPE", 230),
    ("QGROUP_STATUS", 240),
    ("QGROUP_INFO", 242),
    ("QGROUP_LIMIT", 244),
    ("QGROUP_RELATION", 246),
    ("TEMPORARY_ITEM", 248),
    ("BALANCE_ITEM", 248),
    ("PERSISTENT_ITEM", 249),
    ("DEV_STATS", 249),
    ("DEV_REPLACE", 250),
    ("UUID_KEY_SUBVOL", 251),
    ("UUID_KEY_RECEIVED_SUBVOL", 252),
    ("STRING_ITEM", 253),
];

/// Parses `--tree`: a tree name (case-insensitive, `_` or `-`) or a
/// numeric tree id (decimal or 0x-hex).
pub fn parse_tree(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let norm = t.to_ascii_lowercase().replace('_', "-");
    if let Some(&(_, id)) = TREES.iter().find(|(name, _)| *name == norm) {
        return Ok(id);
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_u64(t).map_err(|e| format!("bad tree id '{s}': {e}"));
    }
    let names: Vec<&str> = TREES.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "unknown tree '{s}' (expected {} or a numeric tree id)",
        names.join(", ")
    ))
}

/// The name of a well-known tree id, if it has one.
pub fn tree_name(id: u64) -> Option<&'static str> {
    TREES.iter().find(|&&(_, i)| i == id).map(|&(n, _)| n)
}

/// How a tree is called in messages: `extent tree (2)`, `tree 256`.
pub fn tree_label(id: u64) -> String {
    match tree_name(id) {
        Some(name) => format!("{name} tree ({id})"),
        None => format!("tree {id}"),
    }
}

/// Parses an unsigned number: decimal or `0x`-hex.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (t, 10),
    };
    // from_str_radix accepts a leading '+'; a number here is digits only.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(format!("'{s}' is not a number"));
    }
    u64::from_str_radix(digits, radix).map_err(|_| format!("'{s}' is too large"))
}

/// A key field that is a u64: a number or `max`.
fn parse_u64_field(s: &str) -> Result<u64, String> {
    if s.trim().eq_ignore_ascii_case("max") {
        Ok(u64::MAX)
    } else {
        parse_u64(s)
    }
}

/// Parses a key type: a number up to 255, `max`, or a name such as
/// `EXTENT_ITEM`, `extent_item_key` or `BTRFS_EXTENT_ITEM_KEY`.
pub fn parse_key_type(s: &str) -> Result<u8, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(u8::MAX);
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        let v = parse_u64(t)?;
        return u8::try_from(v).map_err(|_| format!("key type {v} is out of range (0..=255)"));
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("BTRFS_").unwrap_or(&upper);
    // "UUID_KEY_SUBVOL" legitimately contains _KEY; try the name as is first.
    let found = KEY_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| {
            let short = name.strip_suffix("_KEY")?;
            KEY_TYPES.iter().find(|(n, _)| *n == short)
        })
        .map(|&(_, v)| v);
    found.ok_or_else(|| format!("unknown key type '{s}'"))
}

/// A btrfs key, ordered as btrfs orders keys: (objectid, type, offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub objectid: u64,
    pub type_: u8,
    pub offset: u64,
}

impl Key {
    /// The smallest key, the default `--start`.
    pub const MIN: Key = Key {
        objectid: 0,
        type_: 0,
        offset: 0,
    };
    /// The largest key, the default `--end`.
    pub const MAX: Key = Key {
        objectid: u64::MAX,
        type_: u8::MAX,
        offset: u64::MAX,
    };

    /// The key in the ioctl's layout, reserved bytes zero.
    pub fn to_uapi(self) -> BtrfsIoctlReadaKey {
        BtrfsIoctlReadaKey {
            objectid: self.objectid,
            offset: self.offset,
            type_: self.type_,
            reserved: [0; 7],
        }
    }
}

impl core::fmt::Display for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "({}, {}, {})", self.objectid, self.type_, self.offset)
    }
}

/// Parses `OBJECTID[,TYPE[,OFFSET]]`. Missing fields are filled with the
/// fields of `fill` (`Key::MIN` for a start key, `Key::MAX` for an end key).
pub fn parse_key(s: &str, fill: Key) -> Result<Key, String> {
    let fields: Vec<&str> = s.split(',').collect();
    if fields.len() > 3 {
        return Err(format!(
            "bad key '{s}': expected OBJECTID[,TYPE[,OFFSET]], got {} fields",
            fields.len()
        ));
    }
    if let Some(i) = fields.iter().position(|f| f.trim().is_empty()) {
        let what = ["objectid", "type", "offset"][i];
        return Err(format!("bad key '{s}': empty {what}"));
    }
    let bad = |e: String| format!("bad key '{s}': {e}");
    let mut key = fill;
    key.objectid = parse_u64_field(fields[0]).map_err(bad)?;
    if let Some(t) = fields.get(1) {
        key.type_ = parse_key_type(t).map_err(bad)?;
    }
    if let Some(o) = fields.get(2) {
        key.offset = parse_u64_field(o).map_err(bad)?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names() {
        let want = [
            ("root", 1),
            ("extent", 2),
            ("chunk", 3),
            ("dev", 4),
            ("fs", 5),
            ("csum", 7),
            ("quota", 8),
            ("uuid", 9),
            ("free-space", 10),
            ("block-group", 11),
        ];
        for (name, id) in want {
            assert_eq!(parse_tree(name), Ok(id), "{name}");
            assert_eq!(tree_name(id), Some(name));
        }
        assert_eq!(parse_tree("EXTENT"), Ok(2));
        assert_eq!(parse_tree("free_space"), Ok(10));
        assert_eq!(parse_tree("Block_Group"), Ok(11));
    }

    #[test]
    fn tree_ids() {
        assert_eq!(parse_tree("256"), Ok(256));
        assert_eq!(parse_tree("0x100"), Ok(256));
        assert_eq!(parse_tree("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_tree("18446744073709551616").is_err());
        assert!(parse_tree("12abc").is_err());
        assert!(parse_tree("").is_err());
        assert!(parse_tree("-1").is_err());
        let e = parse_tree("extents").unwrap_err();
        assert!(e.contains("unknown tree 'extents'"), "{e}");
        assert!(e.contains("block-group"), "{e}");
    }

    #[test]
    fn tree_labels() {
        assert_eq!(tree_label(2), "extent tree (2)");
        assert_eq!(tree_label(10), "free-space tree (10)");
        assert_eq!(tree_label(256), "tree 256");
        assert_eq!(tree_name(6), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0"), Ok(0));
        assert_eq!(parse_u64("123"), Ok(123));
        assert_eq!(parse_u64("0x1f"), Ok(31));
        assert_eq!(parse_u64("0XFF"), Ok(255));
        assert_eq!(parse_u64("0xffffffffffffffff"), Ok(u64::MAX));
        assert!(parse_u64("0x").is_err());
        assert!(parse_u64("+5").is_err());
        assert!(parse_u64("-5").is_err());
        assert!(parse_u64("5 5").is_err());
        assert!(parse_u64("0x10000000000000000").is_err());
        assert!(parse_u64("1e3").is_err());
    }

    #[test]
    fn key_type_names() {
        let want: &[(&str, u8)] = &[
            ("INODE_ITEM", 1),
            ("INODE_REF", 12),
            ("DIR_ITEM", 84),
            ("DIR_INDEX", 96),
            ("EXTENT_DATA", 108),
            ("EXTENT_CSUM", 128),
            ("ROOT_ITEM", 132),
            ("EXTENT_ITEM", 168),
            ("METADATA_ITEM", 169),
            ("TREE_BLOCK_REF", 176),
            ("EXTENT_DATA_REF", 178),
            ("SHARED_BLOCK_REF", 182),
            ("SHARED_DATA_REF", 184),
            ("BLOCK_GROUP_ITEM", 192),
            ("DEV_EXTENT", 204),
            ("DEV_ITEM", 216),
            ("CHUNK_ITEM", 228),
        ];
        for &(name, v) in want {
            assert_eq!(parse_key_type(name), Ok(v), "{name}");
            assert_eq!(parse_key_type(&name.to_lowercase()), Ok(v), "{name}");
            assert_eq!(parse_key_type(&format!("{name}_KEY")), Ok(v), "{name}");
            assert_eq!(parse_key_type(&format!("{name}_key")), Ok(v), "{name}");
            assert_eq!(
                parse_key_type(&format!("BTRFS_{name}_KEY")),
                Ok(v),
                "{name}"
            );
        }
        assert_eq!(parse_key_type("uuid_key_subvol"), Ok(251));
        assert_eq!(parse_key_type("UUID_KEY_SUBVOL_KEY"), Ok(251));
        assert!(parse_key_type("NO_SUCH_ITEM").is_err());
        assert!(parse_key_type("_KEY").is_err());
    }

    #[test]
    fn key_type_numbers() {
        assert_eq!(parse_key_type("0"), Ok(0));
        assert_eq!(parse_key_type("255"), Ok(255));
        assert_eq!(parse_key_type("0xa8"), Ok(168));
        assert_eq!(parse_key_type("max"), Ok(255));
        assert_eq!(parse_key_type("MAX"), Ok(255));
        let e = parse_key_type("256").unwrap_err();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn keys_fill_missing_fields() {
        let k = |o, t, f| Key {
            objectid: o,
            type_: t,
            offset: f,
        };
        assert_eq!(parse_key("256", Key::MIN), Ok(k(256, 0, 0)));
        assert_eq!(parse_key("256", Key::MAX), Ok(k(256, 255, u64::MAX)));
        assert_eq!(parse_key("256,dir_item", Key::MIN), Ok(k(256, 84, 0)));
        assert_eq!(
            parse_key("256,dir_item", Key::MAX),
            Ok(k(256, 84, u64::MAX))
        );
        assert_eq!(parse_key("256,84,7", Key::MAX), Ok(k(256, 84, 7)));
        assert_eq!(
            parse_key("0x100, EXTENT_ITEM_KEY, 0x4000", Key::MIN),
            Ok(k(256, 168, 0x4000))
        );
        assert_eq!(parse_key("max,max,max", Key::MIN), Ok(Key::MAX));
        assert_eq!(parse_key("Max", Key::MIN), Ok(k(u64::MAX, 0, 0)));
        assert_eq!(parse_key("0,0,0", Key::MAX), Ok(Key::MIN));
    }

    #[test]
    fn bad_keys() {
        for bad in [
            "", ",", "1,", "1,,2", ",1", "1,2,3,4", "x", "1,x", "1,2,x", "1,256", "-1", "1,2,-3",
        ] {
            let e = parse_key(bad, Key::MIN).unwrap_err();
            assert!(e.starts_with("bad key"), "{bad}: {e}");
        }
        assert!(parse_key("1,,2", Key::MIN)
            .unwrap_err()
            .contains("empty type"));
        assert!(parse_key("1,2,3,4", Key::MIN)
            .unwrap_err()
            .contains("4 fields"));
    }

    #[test]
    fn key_order_is_btrfs_order() {
        let a = Key {
            objectid: 1,
            type_: 200,
            offset: u64::MAX,
        };
        let b = Key {
            objectid: 2,
            type_: 0,
            offset: 0,
        };
        let c = Key {
            objectid: 2,
            type_: 1,
            offset: 0,
        };
        let d = Key {
            objectid: 2,
            type_: 1,
            offset: 1,
        };
        assert!(a < b && b < c && c < d);
        assert!(Key::MIN < Key::MAX);
    }

    #[test]
    fn key_to_uapi() {
        let k = Key {
            objectid: 7,
            type_: 8,
            offset: 9,
        }
        .to_uapi();
        assert_eq!((k.objectid, k.type_, k.offset), (7, 8, 9));
        assert_eq!(k.reserved, [0; 7]);
        assert_eq!(
            Key::MAX.to_string(),
            "(18446744073709551615, 255, 18446744073709551615)"
        );
    }
}
