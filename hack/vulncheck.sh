#!/usr/bin/env bash
# vulncheck.sh: run govulncheck on the module against the Go vulnerability
# database, built offline from the golang.org/x/vulndb module (served by the
# Go module proxy like any module) instead of fetched from vuln.go.dev.
# The database is built once per vulndb version into the tool cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hack/tool.sh govulncheck
hack/tool.sh indexdb
version=$(sed -n 's/^VULNDB_VERSION=//p' hack/tool.sh)
db="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}/vulndb/$version"
if [ ! -f "$db/index/db.json" ]; then
  src=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$db.tmp" && mkdir -p "$(dirname "$db")"
  bin/indexdb -vulns "$src/data/osv" -out "$db.tmp"
  rm -rf "$db" && mv "$db.tmp" "$db"
  echo "vulncheck: indexed $(ls "$db/ID" | wc -l) reports of golang.org/x/vulndb@$version into $db" >&2
fi
exec bin/govulncheck -db "file://$db" "$@" ./...
