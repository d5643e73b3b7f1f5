#!/usr/bin/env bash
# Sample patch catalog recipe, run by scripts/images: build.sh OUT WORK
# Downloads the newest bookworm-security versions of libssl3 and openssl
# (`apt-get download PKG=VERSION`, versions chosen now from `apt-cache
# madison`, never hard-coded) and writes OUT/manifest.json naming the advisory:
# the CVE ids come from the top entry of the package's changelog.Debian.gz (read
# from the downloaded .deb); the DSA id too if the entry names one, else the id
# is "DEB-<source>-<version>" and the advisory says so in "note".
# Format: images/samples/README.md.
set -euo pipefail
out=$1 work=$2
suite=bookworm-security
packages=(libssl3 openssl)
fail() { echo "catalog: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb dpkg; do
  command -v "$tool" >/dev/null || fail "'$tool' not found; run scripts/install-deps"
done
mkdir -p "$out" "$work"

# Newest version of a package in any "<suite>/<component>" of apt's sources.
newest_in_suite() {
  local best="" v
  while IFS= read -r v; do
    if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done < <(apt-cache madison "$1" | awk -F' [|] ' -v s=" $suite/" '$3 ~ s { print $2 }')
  echo "$best"
}

declare -A version=()
for p in "${packages[@]}"; do
  version[$p]=$(newest_in_suite "$p")
  [[ -n ${version[$p]} ]] || fail "apt-cache madison $p shows no $suite version (is $suite in the apt sources? apt-get update?)"
  echo "catalog: $p: newest in $suite is ${version[$p]}"
done

cd "$out"
for p in "${packages[@]}"; do
  apt-get download -q "$p=${version[$p]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
  deb=$(ls -1 "${p}_"*.deb 2>/dev/null | head -1)
  [[ -n $deb ]] || fail "apt-get download $p=${version[$p]} produced no .deb"
  [[ $(dpkg-deb -f "$deb" Package) == "$p" && $(dpkg-deb -f "$deb" Version) == "${version[$p]}" ]] ||
    fail "$deb is not $p ${version[$p]}"
done

# The advisory, from the top changelog entry of the first package.
changelog=""
for p in "${packages[@]}"; do
  rm -rf "$work/x"; mkdir -p "$work/x"
  dpkg-deb -x "$out/$(ls -1 "${p}_"*.deb | head -1)" "$work/x"
  if [[ -f $work/x/usr/share/doc/$p/changelog.Debian.gz ]]; then
    changelog=$work/x/usr/share/doc/$p/changelog.Debian.gz
    break
  fi
done
[[ -n $changelog ]] || fail "no usr/share/doc/PKG/changelog.Debian.gz in the downloaded packages"
top=$(zcat "$changelog" | awk '/^[^ \t]/ { n++ } n == 1')
echo "catalog: top changelog entry:"
echo "$top" | sed 's/^/  | /'
header=$(echo "$top" | head -1)
source=${header%% *}
src_version=$(echo "$header" | sed -n 's/^[^ ]* (\([^)]*\)).*/\1/p')
mapfile -t cves < <(echo "$top" | grep -oE 'CVE-[0-9]{4}-[0-9]{4,}' | sort -u)
dsa=$(echo "$top" | grep -oE 'DSA-[0-9]+-[0-9]+' | head -1 || true)
note=""
if [[ -n $dsa ]]; then
  id=$dsa
else
  id="DEB-$source-$src_version"
  note="no DSA id in the changelog of $source $src_version; id derived from the source package and version"
fi
[[ ${#cves[@]} -gt 0 ]] || echo "catalog: warning: no CVE ids in the top changelog entry" >&2

json_list() { local first=1 x; for x in "$@"; do [[ $first ]] || printf ', '; first=; printf '"%s"' "$x"; done; }
{
  printf '{\n  "advisories": [\n    {\n'
  printf '      "id": "%s",\n' "$id"
  printf '      "source": "%s",\n' "$source"
  [[ -z $note ]] || printf '      "note": "%s",\n' "$note"
  printf '      "cves": [%s],\n' "$(json_list "${cves[@]}")"
  printf '      "packages": [\n'
  n=0
  for p in "${packages[@]}"; do
    n=$((n + 1))
    printf '        {"name": "%s", "fixed_version": "%s"}%s\n' "$p" "${version[$p]}" "$([[ $n -lt ${#packages[@]} ]] && echo ,)"
  done
  printf '      ]\n    }\n  ]\n}\n'
} >"$out/manifest.json"
cat "$out/manifest.json"
