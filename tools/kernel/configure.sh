#!/usr/bin/env bash
# Configure the kernel tree at $1 as tinyconfig plus the fragment $2, then
# check that every symbol of the fragment has the value asked for (a symbol
# whose dependencies are not met is silently dropped by Kconfig otherwise).
set -euo pipefail
tree=$1
fragment=$2
shift 2
kmake=("$@")

"${kmake[@]}" -C "$tree" tinyconfig >/dev/null
"$tree/scripts/kconfig/merge_config.sh" -m -O "$tree" "$tree/.config" "$fragment" >/dev/null
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
done < "$fragment"
[ $bad -eq 0 ] || { echo "config: the fragment does not apply; fix kernel/reada.config" >&2; exit 1; }
echo "[kernel] configured: tinyconfig + $(basename "$fragment")"
