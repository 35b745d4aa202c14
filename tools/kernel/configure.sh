#!/usr/bin/env bash
# Configure the kernel tree at TREE as tinyconfig plus the fragments, in
# order, then check that every symbol of the fragments has the value asked
# for, the last fragment's where several set it (a symbol whose dependencies
# are not met is silently dropped by Kconfig otherwise):
#   configure.sh TREE FRAGMENT... -- MAKE-COMMAND...
set -euo pipefail
tree=$1
shift
fragments=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do fragments+=("$1"); shift; done
[ $# -gt 0 ] || { echo "usage: configure.sh TREE FRAGMENT... -- MAKE-COMMAND..." >&2; exit 2; }
shift
kmake=("$@")

"${kmake[@]}" -C "$tree" tinyconfig >/dev/null
"$tree/scripts/kconfig/merge_config.sh" -m -O "$tree" "$tree/.config" "${fragments[@]}" >/dev/null
"${kmake[@]}" -C "$tree" olddefconfig >/dev/null

bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) sym=${line%%=*}
		if grep -q "^$sym=" "$tree/.config"; then echo "config: $sym is set, wanted off" >&2; bad=1; fi ;;
	CONFIG_*=*)
		if ! grep -qx -- "$line" "$tree/.config"; then
			echo "config: $line did not stick (got: $(grep "^${line%%=*}=" "$tree/.config" || echo unset))" >&2
			bad=1
		fi ;;
	esac
done < <(cat "${fragments[@]}" | awk -F= '/^CONFIG_/ { if (!($1 in v)) k[++n] = $1; v[$1] = $0 }
	END { for (i = 1; i <= n; i++) print v[k[i]] }')
[ $bad -eq 0 ] || { echo "config: the fragments do not apply; fix ${fragments[*]}" >&2; exit 1; }
echo "[kernel] configured $tree: tinyconfig + ${fragments[*]##*/}"
