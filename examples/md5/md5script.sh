#!/bin/sh
# md5script.sh SOURCE RESULT: writes the md5 sum of SOURCE to RESULT, then
# prints md5done (the original DTest example's script, with md5sum).
set -e
if [ $# -ne 2 ]; then
    echo "usage: $0 SOURCE RESULT" >&2
    exit 2
fi
md5sum < "$1" | cut -d' ' -f1 > "$2"
echo md5done
