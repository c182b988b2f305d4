#!/usr/bin/env bash
# set-version.sh VERSION: point every install manifest at the images of
# VERSION (e.g. v0.2.0): the kustomize base and load tester, and the Helm
# charts' image tags and versions. `make manifests VERSION=...` runs it.
# Manifests never say :latest (a test checks it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${1:?usage: set-version.sh VERSION}
case "$version" in
  latest|*[!A-Za-z0-9_.-]*) echo "set-version: $version is not a release tag" >&2; exit 2 ;;
esac
chart=${version#v} # chart versions are SemVer without the v

sed -i -E "s#(image: ghcr.io/sluicedev/sluice):[^[:space:]]+#\1:$version#" "$root/kustomize/base/deployment.yaml"
sed -i -E "s#(image: ghcr.io/sluicedev/sluice-loadtester):[^[:space:]]+#\1:$version#" "$root/kustomize/tester/deployment.yaml"
for c in "$root"/charts/*/; do
  [ -f "$c/Chart.yaml" ] || continue
  sed -i -E "s#^(version|appVersion): .*#\1: $chart#" "$c/Chart.yaml"
  sed -i -E "s#^(  tag): .*#\1: $version#" "$c/values.yaml"
done
echo "set-version: manifests and charts now use $version" >&2
