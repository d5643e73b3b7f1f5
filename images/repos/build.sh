#!/usr/bin/env bash
# Fixture apt repositories and images for `--repo`, run by scripts/images:
# build.sh OUT WORK, with PV_SAMPLE_DIR the samples target's directory.
# Layout and purpose of each file: images/repos/README.md.
#
# Packages: bookworm-security's newest libssl3 and openssl (apt-get download
# PKG=VERSION, versions chosen now from apt-cache madison, never hard-coded),
# and three small test packages built here with dpkg-deb, because no real
# bookworm-security update of the sample's packages needs a new dependency:
#   pv-fixture-tool 1.0 (installed into the fixture images), 1.1 in
#   bookworm-security and 1.2 in bookworm-updates, both depending on
#   pv-fixture-newdep, which no image has.
# Indexes: dpkg-scanpackages (Packages, .gz, .xz) and apt-ftparchive release;
# signatures: gpg with a test key made here (InRelease and Release.gpg).
set -euo pipefail
out=$1 work=$2
sample=${PV_SAMPLE_DIR:?}/sample.raw
security_packages=(libssl3 openssl)
fail() { echo "repos: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb dpkg-scanpackages apt-ftparchive gpg gzip xz e2fsck chroot; do
  command -v "$tool" >/dev/null || fail "'$tool' not found; run scripts/install-deps"
done
[[ -f $sample ]] || fail "no sample image at $sample (scripts/images samples)"
[[ $(id -u) -eq 0 ]] || fail "installing into the fixture images needs root (loop mount, chroot)"
arch=$(dpkg --print-architecture)
mkdir -p "$out" "$work"

# --- keys: the repository's test key, and another key nobody trusts
export GNUPGHOME=$work/gnupg
mkdir -m 700 -p "$GNUPGHOME"
make_key() {
  gpg --batch --quiet --passphrase '' --quick-gen-key "$1" ed25519 sign never
  gpg --batch --with-colons --list-keys "$1" | awk -F: '/^fpr:/ { print $10; exit }'
}
test_key=$(make_key 'patchvisor test repository <repo@patchvisor.invalid>')
other_key=$(make_key 'patchvisor untrusted key <other@patchvisor.invalid>')
mkdir -p "$out/keys"
gpg --batch --export "$test_key" >"$out/keys/test-key.gpg"
gpg --batch --armor --export "$test_key" >"$out/keys/test-key.asc"
gpg --batch --export "$other_key" >"$out/keys/other-key.gpg"
echo "repos: test key $test_key, untrusted key $other_key"

# --- packages
debs=$work/debs
mkdir -p "$debs"
newest_in_suite() {
  local best="" v
  while IFS= read -r v; do
    if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done < <(apt-cache madison "$1" | awk -F' [|] ' '$3 ~ / bookworm-security\// { print $2 }')
  echo "$best"
}
declare -A version=()
for p in "${security_packages[@]}"; do
  version[$p]=$(newest_in_suite "$p")
  [[ -n ${version[$p]} ]] || fail "apt-cache madison $p shows no bookworm-security version (apt-get update?)"
  (cd "$debs" && apt-get download -q "$p=${version[$p]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb=$(ls -1 "$debs/${p}_"*.deb 2>/dev/null | head -1)
  [[ -n $deb && $(dpkg-deb -f "$deb" Version) == "${version[$p]}" ]] || fail "apt-get download $p=${version[$p]} failed"
  echo "repos: $p ${version[$p]} from bookworm-security"
done

# build_package NAME VERSION ARCH DEPENDS CHANGELOG_TEXT
build_package() {
  local name=$1 ver=$2 pkg_arch=$3 depends=$4 text=$5 dir=$work/pkg/$1-$2
  mkdir -p "$dir/DEBIAN" "$dir/usr/share/doc/$name"
  {
    echo "Package: $name"
    echo "Version: $ver"
    echo "Architecture: $pkg_arch"
    echo "Maintainer: patchvisor tests <repo@patchvisor.invalid>"
    [[ -z $depends ]] || echo "Depends: $depends"
    echo "Section: misc"
    echo "Priority: optional"
    echo "Description: patchvisor test fixture ($name $ver)"
    echo " A package of the patchvisor test repositories; it installs one text file."
  } >"$dir/DEBIAN/control"
  echo "$name $ver" >"$dir/usr/share/doc/$name/VERSION"
  # Newest entry first, as in every Debian changelog.
  printf '%b' "$text" | gzip -9n >"$dir/usr/share/doc/$name/changelog.Debian.gz"
  dpkg-deb --root-owner-group -Zxz --build "$dir" "$debs/${name}_${ver}_${pkg_arch}.deb" >/dev/null
}
entry() { # SOURCE VERSION SUITE TEXT
  printf '%s (%s) %s; urgency=medium\n\n  * %s\n\n -- patchvisor tests <repo@patchvisor.invalid>  Thu, 01 Jan 2026 00:00:00 +0000\n\n' "$@"
}
log10=$(entry pv-fixture-tool 1.0 bookworm 'First version.')
log11=$(entry pv-fixture-tool 1.1 bookworm-security 'Fix CVE-2099-9001 (a test id, not a real vulnerability); needs pv-fixture-newdep.')
log12=$(entry pv-fixture-tool 1.2 bookworm-updates 'Non-security update.')
build_package pv-fixture-tool 1.0 all "" "$log10"
build_package pv-fixture-tool 1.1 all "pv-fixture-newdep (>= 1.0)" "$log11\n\n$log10"
build_package pv-fixture-tool 1.2 all "pv-fixture-newdep (>= 1.0)" "$log12\n\n$log11\n\n$log10"
build_package pv-fixture-newdep 1.0 "$arch" "" "$(entry pv-fixture-newdep 1.0 bookworm-security 'New package.')"

# --- the good repository: dists/bookworm-security and dists/bookworm-updates
good=$out/repo-good
add_to_suite() { # SUITE DEB...
  local suite=$1; shift
  local deb name
  for deb in "$@"; do
    name=$(dpkg-deb -f "$deb" Package)
    mkdir -p "$good/pool/$suite/main/$name"
    cp "$deb" "$good/pool/$suite/main/$name/"
  done
}
add_to_suite bookworm-security "$debs"/libssl3_*.deb "$debs"/openssl_*.deb \
  "$debs"/pv-fixture-tool_1.1_all.deb "$debs"/pv-fixture-newdep_1.0_*.deb
add_to_suite bookworm-updates "$debs"/pv-fixture-tool_1.2_all.deb

# write_release DIR SUITE LABEL [apt-ftparchive -o ...]: the Release of
# DIR/dists/SUITE over its Packages files.
write_release() {
  local repo=$1 suite=$2 label=$3; shift 3
  apt-ftparchive release \
    -o APT::FTPArchive::Release::Origin=patchvisor-fixture \
    -o "APT::FTPArchive::Release::Label=$label" \
    -o "APT::FTPArchive::Release::Suite=$suite" \
    -o "APT::FTPArchive::Release::Codename=$suite" \
    -o "APT::FTPArchive::Release::Architectures=$arch all" \
    -o APT::FTPArchive::Release::Components=main \
    -o "APT::FTPArchive::Release::Description=patchvisor test repository" "$@" \
    "$repo/dists/$suite" >"$work/Release"
  mv "$work/Release" "$repo/dists/$suite/Release"
}
sign_release() { # DIR SUITE KEY
  local d=$1/dists/$2
  rm -f "$d/InRelease" "$d/Release.gpg"
  gpg --batch --yes --local-user "$3" --digest-algo SHA512 --clearsign -o "$d/InRelease" "$d/Release"
  gpg --batch --yes --local-user "$3" --digest-algo SHA512 --armor --detach-sign -o "$d/Release.gpg" "$d/Release"
}
for suite in bookworm-security bookworm-updates; do
  index=$good/dists/$suite/main/binary-$arch
  mkdir -p "$index"
  (cd "$good" && dpkg-scanpackages --multiversion "pool/$suite" /dev/null 2>/dev/null) >"$index/Packages"
  [[ -s $index/Packages ]] || fail "dpkg-scanpackages found nothing in pool/$suite"
  gzip -9nk "$index/Packages"
  xz -k "$index/Packages"
  label="patchvisor fixture"; [[ $suite == *-security ]] && label="patchvisor fixture security"
  write_release "$good" "$suite" "$label"
  sign_release "$good" "$suite" "$test_key"
done

# --- the bad ones, each a copy of the good one with one thing wrong
copy_repo() { rm -rf "$out/$1"; cp -a "$good" "$out/$1"; }
# A signed InRelease whose text was changed after signing (BADSIG), and no
# Release/Release.gpg to fall back to.
copy_repo repo-badsig
for suite in bookworm-security bookworm-updates; do
  d=$out/repo-badsig/dists/$suite
  sed -i 's/^Description: patchvisor test repository$/Description: patchvisor test repository, altered after signing/' "$d/InRelease"
  grep -q 'altered after signing' "$d/InRelease" || fail "could not alter $d/InRelease"
  rm -f "$d/Release" "$d/Release.gpg"
done
# Signed, but by a key that is in no keyring.
copy_repo repo-otherkey
for suite in bookworm-security bookworm-updates; do sign_release "$out/repo-otherkey" "$suite" "$other_key"; done
# Not signed at all: a Release without InRelease or Release.gpg.
copy_repo repo-unsigned
for suite in bookworm-security bookworm-updates; do rm -f "$out/repo-unsigned/dists/$suite/"{InRelease,Release.gpg}; done
# Validly signed, but its Valid-Until passed long ago (an old offline snapshot).
copy_repo repo-expired
for suite in bookworm-security bookworm-updates; do
  write_release "$out/repo-expired" "$suite" "patchvisor fixture expired" \
    -o 'APT::FTPArchive::Release::Date=Wed, 01 Jan 2020 00:00:00 UTC' \
    -o APT::FTPArchive::Release::ValidTime=1 \
    -o 'APT::FTPArchive::Release::Valid-Until=Wed, 08 Jan 2020 00:00:00 UTC'
  grep -q '^Valid-Until: Wed, 08 Jan 2020' "$out/repo-expired/dists/$suite/Release" || fail "no Valid-Until in the expired Release"
  sign_release "$out/repo-expired" "$suite" "$test_key"
done
# A Packages file that does not match the hash the signed Release gives.
copy_repo repo-badhash
for suite in bookworm-security; do
  index=$out/repo-badhash/dists/$suite/main/binary-$arch
  sed -i 's/^Priority: optional$/Priority: extra/' "$index/Packages"
  rm -f "$index/Packages.gz" "$index/Packages.xz"
  gzip -9nk "$index/Packages"; xz -k "$index/Packages"
done
# A .deb that does not match its SHA256 in the (signed, correct) Packages.
copy_repo repo-baddeb
for f in "$out"/repo-baddeb/pool/bookworm-security/main/pv-fixture-newdep/*.deb; do printf 'x' >>"$f"; done
gpg --batch --keyring "$out/keys/test-key.gpg" --no-default-keyring --verify \
  "$good/dists/bookworm-security/InRelease" 2>/dev/null || fail "the good InRelease does not verify"

# --- advisories for the planned updates, in the two formats --advisories reads
openssl_cves=$(dpkg-deb --fsys-tarfile "$(ls -1 "$debs"/libssl3_*.deb | head -1)" |
  tar -xO ./usr/share/doc/libssl3/changelog.Debian.gz | zcat | awk '/^[^ \t]/ { n++ } n == 1' |
  grep -oE 'CVE-[0-9]{4}-[0-9]{4,}' | sort -u || true)
[[ -n $openssl_cves ]] || fail "no CVE ids in the top changelog entry of libssl3 ${version[libssl3]}"
mkdir -p "$out/advisories"
{
  printf '{\n  "openssl": {\n'
  first=1
  for cve in $openssl_cves; do
    [[ $first ]] || printf ',\n'; first=
    printf '    "%s": {"scope": "local", "releases": {"bookworm": {"status": "resolved", "fixed_version": "%s", "urgency": "medium", "repositories": {"bookworm": "%s"}}}}' \
      "$cve" "${version[openssl]}" "${version[openssl]}"
  done
  printf '\n  },\n  "pv-fixture-tool": {\n'
  printf '    "CVE-2099-9001": {"description": "test id of the patchvisor fixtures", "releases": {"bookworm": {"status": "resolved", "fixed_version": "1.1", "urgency": "low", "repositories": {"bookworm": "1.0"}}}},\n'
  printf '    "CVE-2099-9002": {"description": "still open: must not be listed", "releases": {"bookworm": {"status": "open", "urgency": "low", "repositories": {"bookworm": "1.0"}}}}\n'
  printf '  }\n}\n'
} >"$out/advisories/tracker.json"
cves_json=$(for c in $openssl_cves; do printf '"%s",' "$c"; done); cves_json=[${cves_json%,}]
{
  printf '[\n'
  printf '  {"id": "PV-TEST-0001", "summary": "openssl update of the fixtures", "upstream": %s,\n' "$cves_json"
  printf '   "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "%s"}]}]}]},\n' "${version[openssl]}"
  printf '  {"id": "PV-TEST-0002", "aliases": ["CVE-2099-9001"],\n'
  printf '   "affected": [{"package": {"ecosystem": "Debian:12", "name": "pv-fixture-tool"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}]},\n'
  printf '  {"id": "PV-TEST-0003", "aliases": ["CVE-2099-9003"],\n'
  printf '   "affected": [{"package": {"ecosystem": "Debian:11", "name": "pv-fixture-tool"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}]}\n'
  printf ']\n'
} >"$out/advisories/osv.json"

# --- fixture images: the sample with pv-fixture-tool 1.0 installed and the
# test key trusted; and that one with openssl held and pv-fixture-tool pinned.
mnt=$work/mnt
mkdir -p "$mnt"
mounted=
cleanup() { [[ -z $mounted ]] || umount "$mnt" || umount -l "$mnt" || true; }
trap cleanup EXIT
in_image() { # IMAGE COMMAND...: COMMAND with the image's filesystem at $mnt
  local image=$1; shift
  mount -o loop "$image" "$mnt"; mounted=1
  "$@"
  umount "$mnt"; mounted=
  e2fsck -fn "$image" >/dev/null || fail "e2fsck of $image failed"
}
install_tool() {
  cp "$debs/pv-fixture-tool_1.0_all.deb" "$mnt/tmp/"
  chroot "$mnt" dpkg -i /tmp/pv-fixture-tool_1.0_all.deb
  rm "$mnt/tmp/pv-fixture-tool_1.0_all.deb"
  cp "$out/keys/test-key.gpg" "$mnt/etc/apt/trusted.gpg.d/patchvisor-test.gpg"
}
hold_and_pin() {
  echo "openssl hold" | chroot "$mnt" dpkg --set-selections
  printf 'Package: pv-fixture-tool\nPin: version 1.1\nPin-Priority: -1\n' >"$mnt/etc/apt/preferences.d/pv-fixture-tool.pref"
}
cp --sparse=always "$sample" "$out/sample-fixture.raw"
in_image "$out/sample-fixture.raw" install_tool
cp --sparse=always "$out/sample-fixture.raw" "$out/sample-held.raw"
in_image "$out/sample-held.raw" hold_and_pin
trap - EXIT

{
  printf '{\n  "architecture": "%s",\n  "test_key": "%s",\n' "$arch" "$test_key"
  printf '  "packages": {\n'
  for p in "${security_packages[@]}"; do printf '    "%s": "%s",\n' "$p" "${version[$p]}"; done
  printf '    "pv-fixture-tool": "1.1",\n    "pv-fixture-tool-updates": "1.2",\n    "pv-fixture-newdep": "1.0"\n  }\n}\n'
} >"$out/fixtures.json"
cat "$out/fixtures.json"
