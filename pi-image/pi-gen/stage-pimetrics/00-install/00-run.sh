#!/bin/bash -e
# pi-gen stage step: installs the pimetrics .deb from files/ into the image being built
# (enabled: it starts on first boot) and sets the node name and push URL from pi-gen's config:
#   PIMETRICS_NODE       node label (default: the Pi's host name)
#   PIMETRICS_PUSH_URL   Pushgateway URL (default: no push)
# Runs on the build host; writes below ${ROOTFS_DIR}; on_chroot runs commands in the image.
# files/ must hold exactly one pimetrics_*_<arch>.deb for the image's ARCH (arm64 or armhf).

deb=$(find files -maxdepth 1 -name "pimetrics_*_${ARCH:-arm64}.deb" | sort | tail -n 1)
if [ -z "${deb}" ]; then
    echo "stage-pimetrics: no files/pimetrics_*_${ARCH:-arm64}.deb (scripts/build-deb makes it)" >&2
    exit 1
fi
install -m 0644 "${deb}" "${ROOTFS_DIR}/tmp/pimetrics.deb"

# The config first, so the package keeps it (a conffile an administrator set).
install -d -m 0755 "${ROOTFS_DIR}/etc/pimetrics"
dpkg-deb --fsys-tarfile "${deb}" | tar -xO ./etc/pimetrics/pimetrics.ron >"${ROOTFS_DIR}/etc/pimetrics/pimetrics.ron"
if [ -n "${PIMETRICS_NODE:-}" ]; then
    sed -i "s|^    node: None,\$|    node: \"${PIMETRICS_NODE}\",|" "${ROOTFS_DIR}/etc/pimetrics/pimetrics.ron"
fi
if [ -n "${PIMETRICS_PUSH_URL:-}" ]; then
    sed -i "s|^        url: None,\$|        url: \"${PIMETRICS_PUSH_URL}\",|" "${ROOTFS_DIR}/etc/pimetrics/pimetrics.ron"
fi

on_chroot <<'CHROOT'
dpkg --force-confold -i /tmp/pimetrics.deb
rm -f /tmp/pimetrics.deb
systemctl is-enabled pimetrics.service
CHROOT
