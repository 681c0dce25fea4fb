#!/usr/bin/env bash
# Renders config/default with the images a person names, and applies or
# deletes it:
#
#   hack/deploy.sh render|apply|delete
#
#   IMG            the operator's image (default: the one config/manager pins)
#   EXTRACTOR_IMG  the image of the default ExtractorClass, reference, which
#                  runs every format (default: the one config/default pins)
#
# config/manager pins a released image so that `kubectl apply -k
# config/default` works as it is. To deploy another one without editing a
# committed file, this writes a throw-away overlay under bin/deploy that sets
# the image with kustomize's images transformer and, for EXTRACTOR_IMG, sets
# the class's spec.image with a JSON patch. Only kubectl is needed (`kubectl
# kustomize` has no `edit set image`, hence the overlay).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kubectl=${KUBECTL:-kubectl}
overlay=${DEPLOY_OVERLAY:-$root/bin/deploy}
pinned=ghcr.io/pybase/extraction-operator

# image_fields prints the kustomize images entry for a reference such as
# registry:5000/team/op:v2 or registry/op@sha256:…: a port is not a tag.
image_fields() {
  local ref=$1 name tag
  case $ref in
    *@*) printf '  newName: %s\n  digest: %s\n' "${ref%@*}" "${ref#*@}"; return ;;
  esac
  name=${ref%:*} tag=${ref##*:}
  if [ "$name" = "$ref" ] || [[ $tag == */* ]]; then
    # No tag means latest, not the pinned release's tag.
    printf '  newName: %s\n  newTag: latest\n' "$ref"
  else
    printf '  newName: %s\n  newTag: %s\n' "$name" "$tag"
  fi
}

write_overlay() {
  mkdir -p "$overlay"
  {
    echo "# Written by hack/deploy.sh; not committed."
    echo "resources:"
    echo "- $(realpath --relative-to="$overlay" "$root/config/default")"
    if [ -n "${IMG:-}" ]; then
      echo "images:"
      echo "- name: $pinned"
      image_fields "$IMG"
    fi
    if [ -n "${EXTRACTOR_IMG:-}" ]; then
      cat <<EOF
patches:
- target: {kind: ExtractorClass, name: reference}
  patch: |-
    - op: replace
      path: /spec/image
      value: $EXTRACTOR_IMG
EOF
    fi
  } >"$overlay/kustomization.yaml"
}

write_overlay
case "${1:-}" in
  render) "$kubectl" kustomize "$overlay" ;;
  apply)
    # The default class can only be created once its CRD is established.
    "$kubectl" apply --server-side -k "$root/config/crd"
    "$kubectl" wait --for=condition=Established --timeout=60s \
      crd/extractionjobs.extraction.pybase.io crd/extractorclasses.extraction.pybase.io
    "$kubectl" apply --server-side -k "$overlay"
    ;;
  delete) "$kubectl" delete --ignore-not-found -k "$overlay" ;;
  *) echo "usage: $0 render|apply|delete" >&2; exit 2 ;;
esac
