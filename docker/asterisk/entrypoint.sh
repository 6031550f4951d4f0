#!/bin/sh
# Render the project's Asterisk configuration (dialplan/etc/*.conf templates, dialplan/*.conf
# as they are) into /etc/asterisk, then run Asterisk in the foreground.
# The same templates are rendered by ari_app/sandbox (Python string.Template): the variable list
# below must stay equal to TEMPLATE_VARS in ari_app/sandbox/asterisk.py (a unit test checks).
set -eu

: "${ARI_PASSWORD:?set ARI_PASSWORD (the password of the ARI user)}"
export ARI_PASSWORD
export ARI_BINDADDR="${ARI_BINDADDR:-0.0.0.0}"   # inside the container; publish on 127.0.0.1 only
export ARI_PORT="${ARI_PORT:-8088}"
export ARI_USER="${ARI_USER:-ari_app}"
export APP_NAME="${APP_NAME:-ari-app}"
export AST_ETC_DIR=/etc/asterisk
AST_MOD_DIR="$(ls -d /usr/lib/*/asterisk/modules | head -n 1)"
export AST_MOD_DIR
export AST_VARLIB_DIR=/var/lib/asterisk
export AST_DB_DIR=/var/lib/asterisk
export AST_SPOOL_DIR=/var/spool/asterisk
export AST_RUN_DIR=/var/run/asterisk
export AST_LOG_DIR=/var/log/asterisk
export AST_CACHE_DIR=/var/cache/asterisk

TEMPLATE_VARS='${ARI_BINDADDR} ${ARI_PORT} ${ARI_USER} ${ARI_PASSWORD} ${APP_NAME} ${AST_ETC_DIR} ${AST_MOD_DIR} ${AST_VARLIB_DIR} ${AST_DB_DIR} ${AST_SPOOL_DIR} ${AST_RUN_DIR} ${AST_LOG_DIR} ${AST_CACHE_DIR}'

src=/opt/ari-app/dialplan
# Only our files: the package's sample configs would load modules and open ports we do not want.
rm -f /etc/asterisk/*.conf
for f in "$src"/etc/*.conf; do
  envsubst "$TEMPLATE_VARS" < "$f" > "/etc/asterisk/$(basename "$f")"
done
cp "$src"/*.conf /etc/asterisk/
chmod 0640 /etc/asterisk/*.conf

for d in "$AST_VARLIB_DIR" "$AST_SPOOL_DIR" "$AST_RUN_DIR" "$AST_LOG_DIR" "$AST_CACHE_DIR"; do
  mkdir -p "$d"
done
chown -R asterisk:asterisk /etc/asterisk "$AST_VARLIB_DIR" "$AST_SPOOL_DIR" "$AST_RUN_DIR" "$AST_LOG_DIR" "$AST_CACHE_DIR"

exec /usr/sbin/asterisk -f -n -U asterisk -G asterisk
