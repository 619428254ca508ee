# Real sample videos (vtest.avi: pedestrians; Megamind.avi: shot cuts) from Debian's opencv-doc.
if [ ! -f "$DATA/samples/opencv-doc/vtest.avi" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1 || { apt-get update -qq && apt-get download opencv-doc >/dev/null; })
  dpkg -x "$tmp"/opencv-doc_*.deb "$tmp/x"
  mkdir -p "$DATA/samples/opencv-doc"
  for f in vtest.avi Megamind.avi tree.avi; do
    src=$(find "$tmp/x" -name "$f" | head -1)
    [ -n "$src" ] && cp "$src" "$DATA/samples/opencv-doc/$f"
  done
  rm -rf "$tmp"
fi
