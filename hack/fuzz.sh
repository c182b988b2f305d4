#!/usr/bin/env bash
# Runs every Go fuzz target of the repository, one after the other, for
# FUZZTIME each (default 1m). Targets are discovered per package with
# `go test -list`, so a new Fuzz function needs no change here.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-1m}"
failed=()
ran=0
# A fuzz worker that the engine stops may leave behind the kube-apiserver
# and etcd that its TestMain started. Where it can (as root), each run gets
# its own PID namespace, whose processes all end with it.
jail=()
if unshare --fork --pid --kill-child true 2>/dev/null; then
	jail=(unshare --fork --pid --kill-child)
fi
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	# Only packages with test files that declare a fuzz target.
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "==> $pkg $target ($fuzztime)"
		ran=$((ran + 1))
		if ! "${jail[@]}" go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
			failed+=("$pkg $target")
		fi
	done
done
echo "fuzz: $ran targets, ${#failed[@]} failed"
if ((${#failed[@]})); then
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
