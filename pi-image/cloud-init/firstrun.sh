#!/bin/bash
# pimetrics on first boot, the older way (before cloud-init): Raspberry Pi Imager's
# firstrun.sh, run once by `systemd.run=/boot/firmware/firstrun.sh` on the kernel command
# line. Copy this file and the package as `pimetrics.deb` (scripts/build-deb: arm64 or armhf)
# into the boot partition and append to cmdline.txt (on its single line):
#   systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target
# (Imager already does this when you set options; then paste the block below into its
# firstrun.sh before its final lines.) Set the node name and optional push URL here:
PIMETRICS_NODE="pi-kitchen"
PIMETRICS_PUSH_URL=""

set -e
# The boot partition: /boot/firmware (Bookworm and later) or /boot (older).
BOOT=${PIMETRICS_BOOT:-/boot/firmware}
[ -f "$BOOT/pimetrics.deb" ] || BOOT=/boot

install -d -m 0755 /etc/pimetrics
dpkg-deb --fsys-tarfile "$BOOT/pimetrics.deb" | tar -xO ./etc/pimetrics/pimetrics.ron >/etc/pimetrics/pimetrics.ron
if [ -n "$PIMETRICS_NODE" ]; then
    sed -i "s|^    node: None,\$|    node: \"$PIMETRICS_NODE\",|" /etc/pimetrics/pimetrics.ron
fi
if [ -n "$PIMETRICS_PUSH_URL" ]; then
    sed -i "s|^        url: None,\$|        url: \"$PIMETRICS_PUSH_URL\",|" /etc/pimetrics/pimetrics.ron
fi
# Early in boot systemd is not ready for `start`: the package enables the service, which
# starts after the reboot that follows this script.
dpkg --force-confold -i "$BOOT/pimetrics.deb"
systemctl enable pimetrics.service

# Run once: remove this script and its kernel command line arguments.
rm -f "$BOOT/firstrun.sh" "$BOOT/pimetrics.deb"
if [ -f "$BOOT/cmdline.txt" ]; then
    sed -i 's| systemd.run.*||g' "$BOOT/cmdline.txt"
fi
exit 0
