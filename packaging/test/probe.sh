#!/bin/bash
# Runs inside the container that scripts/package-test boots with `systemd-nspawn -b`, as the
# oneshot probe.service after multi-user.target; systemd powers the container off when it ends.
#
# It does what school IT does with the package, under the container's real systemd: install,
# write config and secrets, start, look, reload, restart with systemd credentials and a short
# watchdog, upgrade, break the config, stop, purge. Every check writes one line to
# /root/probe.out:
#   PLAN id...        the checks this run must pass (written first)
#   PASS id: detail   a check that held
#   FAIL id: detail   a check that did not, followed by "  | " lines of evidence (journal)
#   INFO id: detail   facts for the closing note, not checks
#   DONE              the script reached its end
# The host (scripts/package-test) prints the file and fails unless every planned id passed.
#
# Input from the host, in /root: fehlzeiten.deb, fehlzeiten-upgrade.deb (a higher version),
# fehlzeiten.toml (the config to install),
# probe.env (ports, passwords, expected recipient), ca.pem; the SMTP capture server's Maildir
# log is bind-mounted read-only at /mnt/capture.

set -u
export LC_ALL=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0
OUT=/root/probe.out
: >"$OUT"
# shellcheck source=/dev/null
. /root/probe.env

CONF=/etc/fehlzeiten/fehlzeiten.toml
UNIT=fehlzeiten.service

PLAN="install enabled-not-started system-user config-mode state-dir-mode statoverride man-page
verify security check-config-ok start active-running service-user notify-honoured watchdog-set
sandbox healthz first-sync-mails journald status-cli admin-socket sync-via-socket reload
credential-and-watchdog cli-with-credential check-config-by-hand upgrade-restarts broken-config-fails broken-config-journal
recover stop-clean stopping-seen runtime-dir-gone no-sigsys purge no-files-left"
echo "PLAN" $PLAN >>"$OUT"

pass() { echo "PASS $1: $2" >>"$OUT"; }
info() { echo "INFO $1: $2" >>"$OUT"; }
# fail ID DETAIL [evidence command...]: records the failure with the unit's journal (or the
# output of the given command) as evidence.
fail() {
    local id=$1 detail=$2
    shift 2
    echo "FAIL $id: $detail" >>"$OUT"
    if [ $# -gt 0 ]; then
        "$@" 2>&1 | tail -n 40 | sed 's/^/  | /' >>"$OUT"
    else
        journalctl -u "$UNIT" -n 30 --no-pager 2>&1 | sed 's/^/  | /' >>"$OUT"
    fi
}
# check ID DETAIL CONDITION...: PASS when the condition command succeeds.
check() {
    local id=$1 detail=$2
    shift 2
    if "$@"; then pass "$id" "$detail"; else fail "$id" "$detail"; fi
}
show() { systemctl show -P "$1" "$UNIT"; }
main_pid() { show MainPID; }
# Seconds since the epoch, for `journalctl --since @T`.
now() { date +%s.%N; }
journal_since() { journalctl -u "$UNIT" --since "@$1" -o cat --no-pager; }
wait_for() { # wait_for SECONDS COMMAND...: runs the command every 0.2 s until it succeeds
    local end=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.2
    done
    "$@"
}
# http PATH: one GET to the status endpoint with bash's /dev/tcp (no curl in the image);
# prints the status code, a newline and the body.
http() {
    local reply
    reply=$(
        exec 3<>"/dev/tcp/127.0.0.1/$STATUS_PORT" || exit 1
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3
        timeout 10 cat <&3
    ) || return 1
    printf '%s\n%s\n' "$(printf '%s' "$reply" | head -n1 | cut -d' ' -f2)" \
        "$(printf '%s' "$reply" | sed '1,/^\r\{0,1\}$/d')"
}
mails() { [ -f /mnt/capture/log.jsonl ] && wc -l </mnt/capture/log.jsonl || echo 0; }
have_mail() { [ "$(mails)" -gt 0 ]; }
is_active() { [ "$(show ActiveState)" = active ]; }
# logged_since T TEXT: the unit's journal since T has a line containing TEXT.
logged_since() { journal_since "$1" | grep -q -F "$2"; }

# Everything on the file system before the package comes, to find what it leaves behind.
snapshot() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /root -o -path /mnt -o -path /var/log/journal -o -path /var/tmp \) -prune \
        -o -print 2>/dev/null | sort
}
snapshot >/root/files.before

# --- install -------------------------------------------------------------------------------

if dpkg -i /root/fehlzeiten.deb >/root/dpkg-install.log 2>&1; then
    pass install "dpkg -i: $(grep -c . /root/dpkg-install.log) lines of output, exit 0"
else
    fail install "dpkg -i failed" cat /root/dpkg-install.log
fi
dpkg-query -L fehlzeiten | sort >/root/package.files
check enabled-not-started "is-enabled=$(systemctl is-enabled $UNIT), is-active=$(systemctl is-active $UNIT)" \
    test "$(systemctl is-enabled $UNIT)/$(systemctl is-active $UNIT)" = enabled/inactive
user_line=$(getent passwd fehlzeiten || true)
uid=$(echo "$user_line" | cut -d: -f3)
check system-user "getent passwd: ${user_line:-none}" \
    test -n "$user_line" -a "${uid:-1000}" -lt 1000 -a "$(echo "$user_line" | cut -d: -f6)" = /var/lib/fehlzeiten
check config-mode "$CONF: $(stat -c '%a %U:%G' $CONF)" test "$(stat -c '%a %U:%G' $CONF)" = "640 root:fehlzeiten"
check state-dir-mode "/var/lib/fehlzeiten: $(stat -c '%a %U:%G' /var/lib/fehlzeiten 2>&1)" \
    test "$(stat -c '%a %U:%G' /var/lib/fehlzeiten 2>&1)" = "750 fehlzeiten:fehlzeiten"
check statoverride "dpkg-statoverride: $(dpkg-statoverride --list $CONF)" \
    test "$(dpkg-statoverride --list $CONF)" = "root fehlzeiten 640 $CONF"
man_path=$(man -w 8 fehlzeiten 2>&1)
man_text=$(MANWIDTH=80 man 8 fehlzeiten-check-config 2>&1)
check man-page "man -w 8 fehlzeiten: $man_path; fehlzeiten-check-config(8) renders" \
    test "$man_path" = /usr/share/man/man8/fehlzeiten.8.gz -a -n "$(echo "$man_text" | grep 'check.config')"

# systemd-analyze verify on the installed unit: any output is a failure (an unknown key is
# only a warning with exit 0). man-db is installed, so Documentation=man:fehlzeiten(8) is
# checked too.
verify_out=$(systemd-analyze verify $UNIT 2>&1)
verify_rc=$?
if [ $verify_rc -eq 0 ] && [ -z "$verify_out" ]; then
    pass verify "systemd-analyze verify $UNIT: exit 0, no output"
else
    fail verify "systemd-analyze verify: exit $verify_rc" echo "$verify_out"
fi
security_out=$(systemd-analyze security $UNIT 2>&1)
score=$(echo "$security_out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    pass security "systemd-analyze security (loaded unit): $score"
    info security-online "$(echo "$security_out" | tail -n1)"
else
    fail security "exposure ${score:-unknown} > 2.0" echo "$security_out"
fi

# --- configure and start ---------------------------------------------------------------------

# As an admin would: write the config over the shipped one (owner and mode stay), the secrets
# as files of the service user, mode 0600, and the CA of the school's mail server.
cat /root/fehlzeiten.toml >"$CONF"
install -m 0644 /root/ca.pem /etc/fehlzeiten/ca.pem
(umask 077 && printf '%s\n' "$UNTIS_PASSWORD" >/etc/fehlzeiten/untis.secret)
(umask 077 && printf '%s\n' "$SMTP_PASSWORD" >/etc/fehlzeiten/smtp.secret)
chown fehlzeiten: /etc/fehlzeiten/untis.secret /etc/fehlzeiten/smtp.secret
cc_out=$(runuser -u fehlzeiten -- fehlzeiten check-config 2>&1)
check check-config-ok "as user fehlzeiten: $cc_out" test "$cc_out" = "$CONF: ok"

t0=$(now)
start_out=$(systemctl start $UNIT 2>&1)
start_rc=$?
t1=$(now)
check start "systemctl start: exit $start_rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s $start_out" \
    test $start_rc -eq 0
state="$(show ActiveState) ($(show SubState))"
check active-running "$UNIT is $state" test "$state" = "active (running)"
pid=$(main_pid)
check service-user "MainPID $pid runs as $(ps -o user= -p "$pid" 2>&1)" test "$(ps -o user= -p "$pid")" = fehlzeiten
notify="Type=$(show Type) NotifyAccess=$(show NotifyAccess) StatusText=$(show StatusText)"
# StatusText comes from the daemon's STATUS= line, sent with READY=1: systemd got it.
check notify-honoured "$notify" test "$(show Type)/$(show NotifyAccess)" = notify/main -a \
    -n "$(show StatusText | grep '^running: 1 school(s)')"
check watchdog-set "WatchdogUSec=$(show WatchdogUSec)" test "$(show WatchdogUSec)" = 1min
status_file=/proc/$pid/status
sandbox="$(grep -E '^(NoNewPrivs|Seccomp):' "$status_file" | tr -s '\t\n' '  ')CapEff $(grep ^CapEff "$status_file" | cut -f2)"
check sandbox "$sandbox" test -n "$(grep -x 'NoNewPrivs:.1' "$status_file")" -a \
    -n "$(grep -x 'Seccomp:.2' "$status_file")" -a "$(grep ^CapEff "$status_file" | cut -f2)" = 0000000000000000
health=$(http /healthz | tr '\n' ' ')
check healthz "GET /healthz inside the container: $health" test "$health" = "200 ok "

# The first sync runs right after start; its critical findings go to the social workers in one
# bundled mail, through STARTTLS with AUTH to the capture server on the host.
if wait_for 90 have_mail; then
    pass first-sync-mails "$(mails) mail(s) at the capture server on the host; daemon: $(journal_since "$t0" | grep -m1 'run done')"
else
    fail first-sync-mails "no mail reached the capture server within 90 s"
fi

# The daemon logs natively to journald (systemd-journal-logger), with priorities, not as
# plain stderr lines. (The logger maps info to PRIORITY=5, notice.)
native=$(journalctl _SYSTEMD_UNIT=$UNIT _TRANSPORT=journal SYSLOG_IDENTIFIER=fehlzeiten PRIORITY=5 -o cat --no-pager | grep -m1 '^started: ')
check journald "native journal entry (_TRANSPORT=journal, PRIORITY=5): $native" test -n "$native"

status_cli=$(fehlzeiten status 2>&1)
check status-cli "fehlzeiten status as root: $(echo "$status_cli" | head -n1)" \
    test -n "$(echo "$status_cli" | grep 'scheduler running')" -a -n "$(echo "$status_cli" | grep 'last sync: .* ok')"
sock="/run/fehlzeiten: $(stat -c '%a %U:%G' /run/fehlzeiten), admin.sock: $(stat -c '%a %U:%G' /run/fehlzeiten/admin.sock 2>&1)"
silences=$(fehlzeiten silence list 2>&1)
check admin-socket "$sock; silence list: ${silences:-(empty)}" \
    test "$sock" = "/run/fehlzeiten: 750 fehlzeiten:fehlzeiten, admin.sock: 660 fehlzeiten:fehlzeiten"
t_sync=$(now)
sync_out=$(timeout 120 fehlzeiten sync 2>&1)
sync_rc=$?
via=$(journal_since "$t_sync" | grep -m1 '^admin socket: syncing')
check sync-via-socket "fehlzeiten sync: exit $sync_rc, $sync_out; daemon: ${via:-nothing}" test $sync_rc -eq 0 -a -n "$via"

t_reload=$(now)
reload_rc=0
systemctl reload $UNIT || reload_rc=$?
wait_for 10 logged_since "$t_reload" 'SIGHUP: reloaded'
check reload "systemctl reload: exit $reload_rc; $(journal_since "$t_reload" | grep -m1 SIGHUP); MainPID $(main_pid) (was $pid), $(show ActiveState)" \
    test $reload_rc -eq 0 -a "$(main_pid)" = "$pid" -a "$(show ActiveState)" = active -a \
    -n "$(journal_since "$t_reload" | grep 'SIGHUP: reloaded')"

# --- systemd credentials and the watchdog ----------------------------------------------------

# The WebUntis password as a credential (LoadCredential=, as the config's comments describe)
# and a 3 s watchdog: the daemon must ping within 1.5 s, so 8 s of life prove the pings.
mkdir -p /etc/systemd/system/$UNIT.d
cat >/etc/systemd/system/$UNIT.d/probe.conf <<'EOF'
[Service]
LoadCredential=untis-password:/etc/fehlzeiten/untis.secret
WatchdogSec=3s
EOF
sed -i 's|^password_file = "untis.secret"$|password_credential = "untis-password"|' "$CONF"
systemctl daemon-reload
t_cred=$(now)
systemctl restart $UNIT
cred_pid=$(main_pid)
wait_for 60 logged_since "$t_cred" 'run done'
sleep 8
cred_sync=$(journal_since "$t_cred" | grep -m1 'sync ok')
check credential-and-watchdog "WatchdogUSec=$(show WatchdogUSec), MainPID $cred_pid -> $(main_pid) after 8 s, NRestarts=$(show NRestarts), sync with the credential: ${cred_sync:-none}" \
    test "$(show WatchdogUSec)" = 3s -a "$(main_pid)" = "$cred_pid" -a "$(show NRestarts)" = 0 -a \
    "$(show ActiveState)" = active -a -n "$cred_sync"
# Outside the service there is no $CREDENTIALS_DIRECTORY: operator commands still load the
# config (the credential is "unavailable", not a problem), and check-config by hand says so in
# a note while the unit's ExecStartPre= (with the credential) checks it for real.
cli_rc=0
cli_with_cred=$(fehlzeiten status 2>&1) || cli_rc=$?
check cli-with-credential "fehlzeiten status as root, config with password_credential: exit $cli_rc, $(echo "$cli_with_cred" | head -n1)" \
    test $cli_rc -eq 0 -a -n "$(echo "$cli_with_cred" | grep 'scheduler running')"
hand_rc=0
hand=$(runuser -u fehlzeiten -- fehlzeiten check-config 2>&1) || hand_rc=$?
check check-config-by-hand "check-config as user fehlzeiten: exit $hand_rc, $(echo "$hand" | grep -m1 'note:' | cut -c1-140)…" \
    test $hand_rc -eq 0 -a -n "$(echo "$hand" | grep 'untis.password_credential: note: not checked here')"

# --- upgrade ---------------------------------------------------------------------------------

# The same package with a higher version (built by the host with cargo deb --deb-version):
# dpkg runs prerm upgrade and postinst configure with the old version, which restarts the
# running service and keeps the admin's config and its ownership.
up_pid=$(main_pid)
old_version=$(dpkg-query -W -f='${Version}' fehlzeiten)
if dpkg -i /root/fehlzeiten-upgrade.deb >/root/dpkg-upgrade.log 2>&1 && wait_for 30 is_active; then
    new_version=$(dpkg-query -W -f='${Version}' fehlzeiten)
    check upgrade-restarts "$old_version -> $new_version: MainPID $up_pid -> $(main_pid), $(show ActiveState), config kept ($(grep -c untis-password "$CONF") credential line, $(stat -c '%a %U:%G' $CONF))" \
        test "$new_version" = "$UPGRADE_VERSION" -a "$(main_pid)" != "$up_pid" -a "$(main_pid)" != 0 -a \
        -n "$(grep untis-password "$CONF")" -a "$(stat -c '%a %U:%G' $CONF)" = "640 root:fehlzeiten"
else
    fail upgrade-restarts "dpkg -i of $UPGRADE_VERSION failed or the service did not come back" cat /root/dpkg-upgrade.log
fi

# --- a broken config -------------------------------------------------------------------------

cp -p "$CONF" /root/good.toml
sed -i 's|^status_listen = .*|status_listen = "everywhere"|' "$CONF"
# What check-config says about it.
expected=$(runuser -u fehlzeiten -- fehlzeiten check-config 2>&1 | grep -F "$CONF: daemon.status_listen: ")
t_broken=$(now)
broken_rc=0
systemctl restart $UNIT 2>/root/broken-start.err || broken_rc=$?
pre=$(systemctl status --full $UNIT 2>&1 | grep -m1 -o 'ExecStartPre=.*')
check broken-config-fails "systemctl restart: exit $broken_rc, Result=$(show Result), $pre" \
    test $broken_rc -ne 0 -a "$(show Result)" = exit-code -a \
    -n "$(echo "$pre" | grep -F 'check-config (code=exited, status=1/FAILURE)')"
# The one line of check-config, `file: key.path: problem; fix`, is in the journal. (While the
# unit waits for its automatic restart, `systemctl status` shows the failed ExecStartPre but
# no log lines: it shows only those since the unit last left the inactive state.)
line=$(journal_since "$t_broken" | grep -m1 -F "$CONF: daemon.status_listen: ")
if [ -n "$line" ] && [ "$line" = "$expected" ] && echo "$line" | grep -q -E "^$CONF: daemon\.status_listen: .+; .+"; then
    pass broken-config-journal "journalctl -u $UNIT: $line"
else
    fail broken-config-journal "journal: '$line', check-config: '$expected'"
fi
cp -p /root/good.toml "$CONF"
systemctl reset-failed $UNIT
systemctl start $UNIT
check recover "config fixed, reset-failed, start: $(show ActiveState) ($(show SubState))" \
    test "$(show ActiveState)/$(show SubState)" = active/running

# --- stop -------------------------------------------------------------------------------------

# PID 1 at debug level logs every notification it gets: the daemon's STOPPING=1 shows up.
sleep 1
systemd-analyze log-level debug
t_stop=$(now)
stop_rc=0
systemctl stop $UNIT || stop_rc=$?
t_stopped=$(now)
systemd-analyze log-level info
stop_s=$(awk -v a="$t_stop" -v b="$t_stopped" 'BEGIN { printf "%.1f", b - a }')
check stop-clean "systemctl stop: exit $stop_rc in $stop_s s; $(show ActiveState), Result=$(show Result), main process exit status $(show ExecMainStatus)" \
    test $stop_rc -eq 0 -a "$(show ActiveState)" = inactive -a "$(show Result)" = success -a \
    "$(show ExecMainStatus)" = 0 -a -n "$(awk -v s="$stop_s" 'BEGIN { if (s < 20) print 1 }')"
stopping=$(journalctl --since "@$t_stop" --no-pager -o cat _PID=1 | grep -m1 'STOPPING=1')
daemon_lines=$(journal_since "$t_stop" | grep -E '^(SIGTERM: stopping|stopped)$' | tr '\n' ',')
check stopping-seen "PID 1: ${stopping:-nothing}; daemon: ${daemon_lines}" \
    test -n "$stopping" -a "$daemon_lines" = "SIGTERM: stopping,stopped,"
check runtime-dir-gone "/run/fehlzeiten after stop: $(ls -d /run/fehlzeiten 2>&1)" test ! -e /run/fehlzeiten
# Over the whole run: the system call filter never killed a process of the unit (SIGSYS), the
# watchdog never fired, nothing dumped core.
sigsys=$(journalctl -u $UNIT --no-pager -o cat | grep -c -E 'status=31/SYS|signal=SYS' || true)
watchdog=$(journalctl -u $UNIT --no-pager -o cat | grep -c -i 'watchdog timeout' || true)
dumped=$(journalctl -u $UNIT --no-pager -o cat | grep -c -E 'code=dumped|core-dump' || true)
check no-sigsys "SIGSYS kills: $sigsys, watchdog timeouts: $watchdog, core dumps: $dumped" \
    test "$sigsys/$watchdog/$dumped" = 0/0/0

# --- purge ------------------------------------------------------------------------------------

# The admin drops the test's drop-in (`systemctl revert`) and purges the package.
systemctl revert $UNIT >/dev/null 2>&1
if dpkg --purge fehlzeiten >/root/dpkg-purge.log 2>&1; then
    pass purge "dpkg --purge: exit 0; dpkg -s: $(dpkg-query -W -f='${db:Status-Status}' fehlzeiten 2>&1 | head -n1)"
else
    fail purge "dpkg --purge failed" cat /root/dpkg-purge.log
fi
snapshot >/root/files.after
# New files, except those of the system, not of the package: the account's backups (passwd-,
# group-, ... written by systemd-sysusers; the account itself stays by Debian convention),
# dpkg's backup of its statoverride database, and man-db's cache (its index and the pages
# `man` formatted above; man-db's daily job prunes them).
comm -13 /root/files.before /root/files.after |
    grep -v -E '^/etc/(passwd|group|shadow|gshadow)-$|^/var/lib/dpkg/statoverride-old$|^/var/cache/man/' \
        >/root/files.left || true
left_pkg=$(while read -r f; do [ -e "$f" ] && [ ! -d "$f" -o "$f" = /etc/fehlzeiten -o "$f" = /var/lib/fehlzeiten ] && echo "$f"; done </root/package.files)
others=$(ls -d /etc/fehlzeiten /var/lib/fehlzeiten /etc/systemd/system/multi-user.target.wants/$UNIT \
    /var/lib/systemd/deb-systemd-helper-enabled/*fehlzeiten* /var/lib/dpkg/info/fehlzeiten.* 2>/dev/null)
override=$(dpkg-statoverride --list | grep fehlzeiten)
leftovers() { cat /root/files.left; printf '%s\n' "$left_pkg" "$others" "$override"; }
if [ -s /root/files.left ] || [ -n "$left_pkg$others$override" ] || dpkg-query -L fehlzeiten >/dev/null 2>&1; then
    fail no-files-left "files remain after purge" leftovers
else
    pass no-files-left "no new file since before the install ($(wc -l </root/package.files) package paths checked, statoverride gone, unit and wants link gone)"
fi
info account "after purge: $(getent passwd fehlzeiten) (kept, Debian convention)"
echo DONE >>"$OUT"
