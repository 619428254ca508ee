# Animal photographs for the fidelity suite (bench/fidelity, `--animals`): cut-out photos of whole
# animals from Debian's tuxpaint-stamps-default (GPL-2), the pinned version, its .deb checked by
# sha256, each photo checked again by sha256 as it is copied into $DATA/photos/ (the list and
# the hashes live in vidchat.apps.fidelity.photos). Skipped when they are all there and right.
if ! $PY -m vidchat.apps.fidelity.photos check >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  deb_version=2022.06.04-1
  deb_sha256=6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34
  (cd "$tmp" && { apt-get download "tuxpaint-stamps-default=$deb_version" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download "tuxpaint-stamps-default=$deb_version" >/dev/null; }; })
  echo "$deb_sha256  $tmp/tuxpaint-stamps-default_${deb_version}_all.deb" | sha256sum -c --quiet -
  dpkg -x "$tmp/tuxpaint-stamps-default_${deb_version}_all.deb" "$tmp/x"
  $PY -m vidchat.apps.fidelity.photos install "$tmp/x"
  rm -rf "$tmp"
fi
