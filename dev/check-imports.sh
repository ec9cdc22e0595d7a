#!/usr/bin/env bash
# Checks the imports of library targets (the access level of an import there is API):
#   - every import carries an access level (`internal import Synchronization`): with
#     InternalImportsByDefault a bare `import` is internal, but a reader can't tell that it was meant;
#   - every `public import` says why, in a `//` comment on the same line or on the line above
#     (`public import Logging  // CourierServer takes a Logger`).
# Executables, tests and generated code are not checked. Prints each finding as FILE:LINE: ...
#
#   ./dev/check-imports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The directories of the package's library targets, from the manifest.
mapfile -t directories < <(swift package dump-package | python3 -c '
import json, sys
package = json.load(sys.stdin)
for target in package["targets"]:
    if target["type"] != "regular":
        continue  # executables, tests, plugins, system libraries
    print(target.get("path") or "Sources/" + target["name"])
')

status=0
for directory in "${directories[@]}"; do
    while IFS= read -r file; do
        case "$file" in *.pb.swift | *.courier.swift) continue ;; esac
        awk -v file="$file" '
            /^import / {
                printf "%s:%d: bare import; give it an access level (internal import ...)\n", file, NR
                bad = 1
            }
            /^public import / && $0 !~ /\/\// && previous !~ /^[[:space:]]*\/\// {
                printf "%s:%d: public import without a comment saying why it is public\n", file, NR
                bad = 1
            }
            { previous = $0 }
            END { exit bad }
        ' "$file" || status=1
    done < <(git ls-files "$directory" | grep '\.swift$' || true)
done
if [ "$status" -ne 0 ]; then
    echo "check-imports: findings above" >&2
else
    echo "check-imports: ${#directories[@]} library targets checked"
fi
exit "$status"
