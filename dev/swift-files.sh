#!/usr/bin/env bash
# Prints the Swift files the formatter owns: `git ls-files '*.swift'` minus the globs in .swiftformatignore.
# Used by dev/format.sh and dev/check-format.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
patterns=()
while IFS= read -r line; do
    line=${line%%#*}
    line=${line%"${line##*[![:space:]]}"}
    [ -n "$line" ] && patterns+=("$line")
done < .swiftformatignore
git ls-files '*.swift' | while IFS= read -r file; do
    [ -f "$file" ] || continue
    ignored=false
    for pattern in "${patterns[@]}"; do
        # shellcheck disable=SC2053 # the pattern is a glob
        if [[ $file == $pattern || $(basename "$file") == $pattern ]]; then ignored=true; break; fi
    done
    "$ignored" || printf '%s\n' "$file"
done
