#!/usr/bin/env python3
"""Writes the log_secrets corpus: tests/data/logs/corpus/root/var/log/<source>.log
and tests/data/logs/corpus/expect/<source>.tsv.

Every line of every log is a named case. The .tsv lists, for each line:
LINE <TAB> CODES (comma-separated, or `-` for a true negative) <TAB> NAME
<TAB> SECRETS (comma-separated strings that must never reach a report).

Run it again after editing the cases; the generated files are committed.
"""
import base64
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "corpus", "root", "var", "log")
EXPECT = os.path.join(HERE, "corpus", "expect")

cases = {}


def case(source, name, text, codes=(), secrets=()):
    cases.setdefault(source, []).append((name, text, list(codes), list(secrets)))


def tp(source, name, text, code, *secrets):
    case(source, name, text, [code], secrets)


def tn(source, name, text):
    case(source, name, text)


def b64(s):
    return base64.b64encode(s.encode()).decode()


TS = "25/Nov/2026:10:{:02d}:{:02d} +0000"
UA = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
]


def ngx(i, req, status=200, ref="-", ua=None, extra=""):
    ua = ua or UA[i % len(UA)]
    ip = f"203.0.113.{(i * 7) % 250 + 1}"
    return f'{ip} - - [{TS.format(i % 60, (i * 13) % 60)}] "{req}" {status} {512 + i * 31} "{ref}" "{ua}"{extra}'


# --- nginx access log --------------------------------------------------------
S = "nginx_access"
for i in range(40):
    paths = ["/", "/static/app.css", "/api/v1/pages/42", "/favicon.ico", "/users/sign_in",
             "/users/password/new", "/users/password/edit?reset_password_token=abcdef123456",
             "/password_reset_sent", "/api/v1/users/17/password", "/login?next=/account&pass="]
    p = paths[i % len(paths)]
    ref = ["-", "https://papyrs.example/", "https://www.google.com/search?q=papyrs",
           "https://papyrs.example/login?next=%2Fhome"][i % 4]
    tn(S, f"plain_request_{i}", ngx(i, f"GET {p} HTTP/1.1", ref=ref))
pw = ["Tr0ub4dor-3", "hunter2hunter", "S3cr3tPassw0rd", "correct-horse-42", "Winter2026!x",
      "Zq8pL2mN5", "P%40ssw0rd99", "letmein-7781"]
for i, s in enumerate(pw):
    tp(S, f"password_in_query_{i}", ngx(100 + i, f"GET /login?user=u{i}&password={s} HTTP/1.1", 302), "password_assignment", s)
for i, s in enumerate(pw[:4]):
    tp(S, f"pwd_in_query_{i}", ngx(120 + i, f"GET /legacy/auth.php?uid={i}&pwd={s}&remember=1 HTTP/1.1"), "password_assignment", s)
for i, s in enumerate(pw[4:]):
    tp(S, f"pass_form_key_{i}", ngx(130 + i, f"GET /cgi-bin/login.cgi?login=admin&pass={s} HTTP/1.0", 401), "password_assignment", s)
tn(S, "empty_password_param", ngx(140, "GET /login?user=bob&password=&remember=1 HTTP/1.1"))
tn(S, "masked_password_param", ngx(141, "GET /login?user=bob&password=*** HTTP/1.1"))
tn(S, "redacted_password_param", ngx(142, "GET /login?user=bob&password=[REDACTED] HTTP/1.1"))
for i, (u, s) in enumerate([("admin", "nimda-2026"), ("deploy", "d3pl0y!Key"), ("alice", "al1ce:wonder")]):
    tp(S, f"basic_auth_logged_{i}", ngx(150 + i, "GET /admin/ HTTP/1.1", extra=f' "Basic {b64(u + ":" + s)}"'), "basic_auth_header", b64(u + ":" + s))
tn(S, "authorization_dash", ngx(160, "GET /admin/ HTTP/1.1", 401, extra=' "-"'))
for i in range(4):
    tok = f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyMT{i}IsImV4cCI6MTc2NDEwOTY0MH0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk{i}"
    tp(S, f"bearer_logged_{i}", ngx(170 + i, "GET /api/v1/me HTTP/1.1", extra=f' "Bearer {tok}"'), "bearer_token", tok)
tn(S, "bearer_placeholder", ngx(180, "GET /api/v1/me HTTP/1.1", 401, extra=' "Bearer undefined"'))
tp(S, "url_creds_in_referer", ngx(181, "GET / HTTP/1.1", ref="https://admin:Adm1nPa55@staging.papyrs.example/"), "url_credentials", "Adm1nPa55")
tn(S, "email_in_query", ngx(182, "GET /invite?email=bob@example.com HTTP/1.1", ref="https://papyrs.example:443/team"))
tp(S, "card_in_query", ngx(183, "POST /checkout?card=4111111111111111&exp=12/29 HTTP/1.1"), "card_number", "4111111111111111")
tn(S, "order_number_not_luhn", ngx(185, "GET /orders/4111111111111112 HTTP/1.1"))
tn(S, "long_numeric_id", ngx(186, "GET /api/v1/events/1764109640123456789 HTTP/1.1"))

# --- nginx error log ---------------------------------------------------------
S = "nginx_error"
for i in range(15):
    tn(S, f"upstream_error_{i}", f'2026/11/25 10:{i:02d}:07 [error] 812#812: *{1000 + i} connect() failed (111: Connection refused) while connecting to upstream, client: 198.51.100.{i + 2}, server: papyrs.example, request: "GET /api/v1/pages/{i} HTTP/1.1", upstream: "http://127.0.0.1:8000/api/v1/pages/{i}", host: "papyrs.example"')
for i in range(5):
    tn(S, f"ssl_handshake_{i}", f"2026/11/25 11:{i:02d}:00 [info] 812#812: *{2000 + i} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: 192.0.2.{i + 10}, server: 0.0.0.0:443")
for i, s in enumerate(["Upstr3am!pw", "q9W8e7R6t5", "pg-app-2026"]):
    tp(S, f"password_in_error_request_{i}", f'2026/11/25 12:0{i}:00 [error] 812#812: *{3000 + i} upstream timed out (110: Connection timed out) while reading response header from upstream, client: 198.51.100.7, server: papyrs.example, request: "GET /auth?login=ops&password={s} HTTP/1.1", upstream: "http://127.0.0.1:8000/auth", host: "papyrs.example"', "password_assignment", s)
tn(S, "basic_realm", '2026/11/25 12:10:00 [error] 812#812: *3100 user "admin": password mismatch, client: 198.51.100.9, server: papyrs.example, request: "GET /admin/ HTTP/1.1", host: "papyrs.example"')
tn(S, "auth_basic_no_user", '2026/11/25 12:11:00 [error] 812#812: *3101 no user/password was provided for basic authentication, client: 198.51.100.9, server: papyrs.example, request: "GET /admin/ HTTP/1.1"')
tn(S, "private_key_path", "2026/11/25 12:12:00 [emerg] 812#812: cannot load certificate key \"/etc/ssl/private/papyrs.key\": PEM_read_bio_PrivateKey() failed")

# --- sshd / auth.log ---------------------------------------------------------
S = "auth"
for i in range(20):
    u = ["root", "admin", "oracle", "ubuntu", "test"][i % 5]
    tn(S, f"failed_password_{i}", f"Nov 25 10:{i:02d}:11 web-1 sshd[{4000 + i}]: Failed password for invalid user {u} from 203.0.113.{i + 5} port {40000 + i} ssh2")
for i in range(8):
    tn(S, f"accepted_publickey_{i}", f"Nov 25 11:{i:02d}:02 web-1 sshd[{4100 + i}]: Accepted publickey for deploy from 198.51.100.{i + 3} port {50000 + i} ssh2: ED25519 SHA256:Xq3Vb0dPm7Lk2s9Q1wErTyUiOp4aSdFgHjKlZxCvBn{i}")
for i in range(5):
    tn(S, f"accepted_password_{i}", f"Nov 25 11:{i:02d}:30 web-1 sshd[{4200 + i}]: Accepted password for alice from 198.51.100.{i + 40} port {51000 + i} ssh2")
tn(S, "pam_auth_failure", "Nov 25 11:10:00 web-1 sshd[4300]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root")
tn(S, "pam_passwd_changed", "Nov 25 11:11:00 web-1 passwd[4301]: pam_unix(passwd:chauthtok): password changed for alice")
tn(S, "passwd_prose_error", "Nov 25 11:12:00 web-1 passwd[4302]: passwd: Authentication token manipulation error")
tn(S, "passwd_updated", "Nov 25 11:12:30 web-1 passwd[4303]: passwd: password updated successfully")
for i in range(6):
    tn(S, f"sudo_command_{i}", f"Nov 25 11:{20 + i}:00 web-1 sudo:    alice : TTY=pts/{i} ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart papyrs-{i}")
for i, s in enumerate(["MyS3cretDb!", "r00tSQL-pw"]):
    tp(S, f"sudo_mysql_password_flag_{i}", f"Nov 25 11:3{i}:00 web-1 sudo:    alice : TTY=pts/1 ; PWD=/srv/app ; USER=root ; COMMAND=/usr/bin/mysql -u root --password={s} papyrs", "password_assignment", s)
tp(S, "sudo_pgpassword_env", "Nov 25 11:40:00 web-1 sudo:    bob : TTY=pts/2 ; PWD=/srv/app ; USER=postgres ; COMMAND=/usr/bin/env PGPASSWORD=Pgp4ss-2026 pg_dump papyrs", "password_assignment", "Pgp4ss-2026")
tn(S, "sudo_prompt", "Nov 25 11:41:00 web-1 sudo: pam_unix(sudo:auth): conversation failed")
tn(S, "session_opened", "Nov 25 11:42:00 web-1 sshd[4400]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)")
tn(S, "invalid_user", "Nov 25 11:43:00 web-1 sshd[4401]: Invalid user pi from 203.0.113.77 port 41022")
tn(S, "disconnected_preauth", "Nov 25 11:44:00 web-1 sshd[4402]: Disconnected from authenticating user root 203.0.113.78 port 41023 [preauth]")
tp(S, "chpasswd_hash_in_log", "Nov 25 11:45:00 web-1 useradd[4403]: new user: name=svc, UID=1002, password=$6$rounds=5000$Xy7zAbCdEfGh$QmV1uXoR8sT3wY6zB9cE2fH5jK8mN1pQ4sU7vX0yZ3bC6dF9gJ2kL5nP8rS1tW4xZ7aC0eG3hJ6mP9sV2yB5e1", "password_hash", "Xy7zAbCdEfGh$QmV1uXoR8sT3wY6zB9cE2fH5jK8mN1pQ4sU7vX0yZ3bC6dF9gJ2kL5nP8rS1tW4xZ7aC0eG3hJ6mP9sV2yB5e1")

# --- PostgreSQL --------------------------------------------------------------
S = "postgresql"
for i in range(15):
    tn(S, f"connection_authorized_{i}", f"2026-11-25 10:{i:02d}:00.{i:03d} UTC [{5000 + i}] app@papyrs LOG:  connection authorized: user=app database=papyrs application_name=puma SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)")
for i in range(5):
    tn(S, f"password_auth_failed_{i}", f'2026-11-25 10:2{i}:00.000 UTC [{5100 + i}] app@papyrs FATAL:  password authentication failed for user "app"')
    tn(S, f"pg_hba_detail_{i}", f'2026-11-25 10:2{i}:00.001 UTC [{5100 + i}] app@papyrs DETAIL:  Connection matched file "/etc/postgresql/16/main/pg_hba.conf" line 118: "host all all 10.0.0.0/8 scram-sha-256"')
for i in range(10):
    tn(S, f"slow_statement_{i}", f"2026-11-25 10:3{i % 10}:00.000 UTC [{5200 + i}] app@papyrs LOG:  duration: {1200 + i * 17}.512 ms  statement: SELECT pages.* FROM pages WHERE pages.site_id = {i} ORDER BY updated_at DESC LIMIT 50")
for i, s in enumerate(["n3wR0lePw", "app-Rotated-77", "Repl1cator!"]):
    tp(S, f"alter_role_password_{i}", f"2026-11-25 10:4{i}:00.000 UTC [{5300 + i}] postgres@postgres LOG:  statement: ALTER ROLE app{i} WITH LOGIN PASSWORD '{s}';", "password_assignment", s)
tp(S, "create_user_password", "2026-11-25 10:45:00.000 UTC [5310] postgres@postgres LOG:  statement: CREATE USER reporter WITH ENCRYPTED PASSWORD 'Rep0rter#2026' VALID UNTIL 'infinity';", "password_assignment", "Rep0rter#2026")
tn(S, "alter_role_password_null", "2026-11-25 10:46:00.000 UTC [5311] postgres@postgres LOG:  statement: ALTER ROLE olduser PASSWORD NULL;")
tn(S, "password_encryption_param", '2026-11-25 10:47:00.000 UTC [5000] LOG:  parameter "password_encryption" changed to "scram-sha-256"')
tp(S, "dsn_in_error", "2026-11-25 10:48:00.000 UTC [5312] app@papyrs ERROR:  could not connect to server \"postgres://replicator:R3pl-S3cret@10.0.0.12:5432/papyrs\"", "url_credentials", "R3pl-S3cret")
tn(S, "checkpoint", "2026-11-25 10:49:00.000 UTC [48] LOG:  checkpoint complete: wrote 1843 buffers (11.2%); 0 WAL file(s) added, 0 removed, 1 recycled; write=179.612 s, sync=0.004 s, total=179.637 s")
tp(S, "card_in_insert", "2026-11-25 10:50:00.000 UTC [5313] app@papyrs LOG:  statement: INSERT INTO payments (account_id, pan, amount) VALUES (42, '4012888888881881', 1900)", "card_number", "4012888888881881")
tn(S, "bigint_values", "2026-11-25 10:51:00.000 UTC [5314] app@papyrs LOG:  statement: INSERT INTO events (id, ts) VALUES (9223372036854775807, 1764109640123)")

# --- Rails -------------------------------------------------------------------
S = "rails"
for i in range(10):
    tn(S, f"started_get_{i}", f'I, [2026-11-25T10:{i:02d}:00.123456 #{6000 + i}]  INFO -- : [req-{i:04x}] Started GET "/sites/{i}/pages" for 198.51.100.{i + 1} at 2026-11-25 10:{i:02d}:00 +0000')
    tn(S, f"completed_{i}", f"I, [2026-11-25T10:{i:02d}:00.223456 #{6000 + i}]  INFO -- : [req-{i:04x}] Completed 200 OK in {20 + i}ms (Views: {10 + i}.1ms | ActiveRecord: {3 + i}.2ms | Allocations: {9000 + i})")
for i in range(6):
    tn(S, f"filtered_params_{i}", f'I, [2026-11-25T10:1{i}:00.000000 #6100]  INFO -- : [req-a{i}] Parameters: {{"authenticity_token"=>"[FILTERED]", "user"=>{{"email"=>"user{i}@example.com", "password"=>"[FILTERED]", "remember_me"=>"0"}}, "commit"=>"Log in"}}')
for i, s in enumerate(["Sup3rSecret!", "railsPw-2026", "xK9#mQ2$vL"]):
    tp(S, f"unfiltered_password_{i}", f'I, [2026-11-25T10:2{i}:00.000000 #6200]  INFO -- : [req-b{i}] Parameters: {{"user"=>{{"email"=>"u{i}@example.com", "password"=>"{s}"}}, "commit"=>"Log in"}}', "password_assignment", s)
tp(S, "unfiltered_confirmation", 'I, [2026-11-25T10:25:00.000000 #6200]  INFO -- : [req-b9] Parameters: {"user"=>{"password_confirmation"=>"N3wPa55word!"}}', "password_assignment", "N3wPa55word!")
tn(S, "password_reset_sent", "I, [2026-11-25T10:26:00.000000 #6201]  INFO -- : [req-c1] password_reset_sent=true user_id=42 mailer=Devise::Mailer")
tn(S, "redirect_password_new", 'I, [2026-11-25T10:27:00.000000 #6201]  INFO -- : [req-c2] Redirected to https://papyrs.example/users/password/new')
tn(S, "password_changed_at", "I, [2026-11-25T10:28:00.000000 #6201]  INFO -- : [req-c3] User 42 updated: password_changed_at=2026-11-25T10:28:00Z")
tp(S, "database_url_in_boot", "I, [2026-11-25T10:29:00.000000 #6300]  INFO -- : Booting with DATABASE_URL=postgres://papyrs:Pr0dDbPw-9@db.internal:5432/papyrs_production", "url_credentials", "Pr0dDbPw-9")
tn(S, "database_url_masked", "I, [2026-11-25T10:30:00.000000 #6300]  INFO -- : Booting with DATABASE_URL=postgres://papyrs:***@db.internal:5432/papyrs_production")
tp(S, "stripe_key_in_error", "E, [2026-11-25T10:31:00.000000 #6301] ERROR -- : Stripe::AuthenticationError: Invalid API Key provided: sk_live_51Hx7Yq2eZvKYlo2C8r9Tq3Wm", "stripe_secret_key", "sk_live_51Hx7Yq2eZvKYlo2C8r9Tq3Wm")
tn(S, "stripe_test_key_masked", "E, [2026-11-25T10:32:00.000000 #6301] ERROR -- : Stripe::AuthenticationError: Invalid API Key provided: sk_live_********************7Wm")
tp(S, "card_in_params", 'I, [2026-11-25T10:33:00.000000 #6302]  INFO -- : [req-d1] Parameters: {"card"=>{"number"=>"4242 4242 4242 4242", "exp"=>"12/29"}}', "card_number", "4242 4242 4242 4242")
tn(S, "card_last4", 'I, [2026-11-25T10:34:00.000000 #6302]  INFO -- : [req-d2] Charge ch_3PqR created for card ending 4242, amount 1900')

# --- Django ------------------------------------------------------------------
S = "django"
for i in range(10):
    tn(S, f"request_ok_{i}", f'[25/Nov/2026 10:{i:02d}:01] "GET /accounts/profile/ HTTP/1.1" 200 {3000 + i * 11}')
for i in range(4):
    tn(S, f"star_masked_post_{i}", f"ERROR 2026-11-25 10:1{i}:00,000 log 7011 140 Internal Server Error: /accounts/login/\nPOST: <QueryDict: {{'username': ['user{i}'], 'password': ['********************']}}>".replace("\n", " "))
for i, s in enumerate(["dj4ngo-Pw!", "Unch@ined77"]):
    tp(S, f"debug_post_password_{i}", f"DEBUG 2026-11-25 10:2{i}:00,000 views 7011 140 login attempt data={{'username': 'user{i}', 'password': '{s}'}}", "password_assignment", s)
tn(S, "password_reset_done", '[25/Nov/2026 10:30:00] "GET /accounts/password_reset/done/ HTTP/1.1" 200 2101')
tn(S, "password_validation", "WARNING 2026-11-25 10:31:00,000 forms 7011 140 password_validation failed: This password is too common.")
tp(S, "pbkdf2_hash_dump", "DEBUG 2026-11-25 10:32:00,000 models 7011 140 user=42 stored=pbkdf2_sha256$870000$Qx7mZp2LsVt9$Jf3kD8sLq2Wz7Xc5Vb1Nm4Hg6Ty9Ur0Ei3Oa8Ps2Dk=", "password_hash", "Jf3kD8sLq2Wz7Xc5Vb1Nm4Hg6Ty9Ur0Ei3Oa8Ps2Dk=")
tp(S, "bcrypt_hash_dump", "DEBUG 2026-11-25 10:33:00,000 models 7011 140 legacy hash $2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW for user 7", "password_hash", "R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")
tp(S, "argon2_hash_dump", "DEBUG 2026-11-25 10:34:00,000 models 7011 140 hash=$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$q8Hf2GtVnL0vT8mYJ3nR5kWpX1bZ4cD6eF9gA2hK7sM", "password_hash", "q8Hf2GtVnL0vT8mYJ3nR5kWpX1bZ4cD6eF9gA2hK7sM")
tn(S, "dollar_amount", "INFO 2026-11-25 10:35:00,000 billing 7011 140 invoice total $25.00 for plan $2 tier")
tp(S, "secret_key_env_dump", "WARNING 2026-11-25 10:36:00,000 settings 7011 140 env AWS_ACCESS_KEY_ID=AKIAZ3XQ7P2M4N6R8T1V", "aws_access_key_id", "AKIAZ3XQ7P2M4N6R8T1V")
tp(S, "aws_secret_env_dump", "WARNING 2026-11-25 10:37:00,000 settings 7011 140 env aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Hn2Lm4d", "aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Hn2Lm4d")
tn(S, "aws_docs_example", "INFO 2026-11-25 10:38:00,000 settings 7011 140 see docs: AKIAIOSFODNN7EXAMPLE is the documented example key")

# --- Node (pino JSON / morgan) ----------------------------------------------
S = "node"
for i in range(12):
    tn(S, f"pino_request_{i}", f'{{"level":30,"time":1764109640{i:03d},"pid":7{i:03d},"hostname":"web-1","req":{{"id":{i},"method":"GET","url":"/api/v1/pages/{i}","remoteAddress":"::ffff:198.51.100.{i + 1}"}},"res":{{"statusCode":200}},"responseTime":{3 + i},"msg":"request completed"}}')
for i in range(4):
    tn(S, f"pino_redacted_{i}", f'{{"level":30,"time":1764109641{i:03d},"msg":"login","body":{{"email":"u{i}@example.com","password":"[Redacted]"}},"headers":{{"authorization":"[Redacted]"}}}}')
for i, s in enumerate(["n0deSecret!", "Expr3ss-pw", "q1w2e3r4t5y6"]):
    tp(S, f"pino_password_leak_{i}", f'{{"level":30,"time":1764109642{i:03d},"msg":"login","body":{{"email":"u{i}@example.com","password":"{s}"}}}}', "password_assignment", s)
for i in range(3):
    tok = f"ghp_{'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH3j'}{i}{i}"
    tp(S, f"github_token_leak_{i}", f'{{"level":40,"time":1764109643{i:03d},"msg":"git clone failed","url":"https://x-access-token@github.com/papyrs/site.git","token":"{tok}"}}', "github_token", tok)
tp(S, "slack_webhook", '{"level":50,"time":1764109644000,"msg":"notify failed","webhook":"https://hooks.slack.com/services/T024BE7LD/B01ABCD2EFG/x9Yq7Lm3Np5Rt8Vw2Zc4"}', "slack_token", "x9Yq7Lm3Np5Rt8Vw2Zc4")
tp(S, "slack_bot_token", '{"level":50,"time":1764109644001,"msg":"slack api error","token":"xoxb-2048123456-4096123456789-Qw3Er5Ty7Ui9Op1As3Df5Gh"}', "slack_token", "Qw3Er5Ty7Ui9Op1As3Df5Gh")
tn(S, "slack_token_masked", '{"level":50,"time":1764109644002,"msg":"slack api error","token":"xoxb-***"}')
tp(S, "bearer_in_headers", '{"level":20,"time":1764109645000,"msg":"outgoing","headers":{"authorization":"Bearer sk-proj-7Hq2Lm9Xv4Tz8Rw3Ny6Pb1Kd5Fg0Js"}}', "bearer_token", "sk-proj-7Hq2Lm9Xv4Tz8Rw3Ny6Pb1Kd5Fg0Js")
tp(S, "escaped_json_password", '{"level":30,"time":1764109645001,"msg":"{\\"event\\":\\"signup\\",\\"password\\":\\"Esc4ped-Pw\\"}"}', "password_assignment", "Esc4ped-Pw")
tp(S, "util_inspect_password", "2026-11-25T10:50:00.000Z debug auth { user: 'carol', password: 'In5pect3d!' }", "password_assignment", "In5pect3d!")
tn(S, "morgan_line", '::ffff:198.51.100.3 - - [25/Nov/2026:10:51:00 +0000] "POST /api/v1/session HTTP/1.1" 201 81 "-" "node-fetch/1.0"')
tp(S, "private_key_flattened", '{"level":50,"time":1764109646000,"msg":"bad key","key":"-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAx7Vq2Hn4Lm8Tz3Rw9Pb1Kd5Fg0Js\\n-----END RSA PRIVATE KEY-----"}', "private_key_block", "MIIEowIBAAKCAQEAx7Vq2Hn4Lm8Tz3Rw9Pb1Kd5Fg0Js")
tn(S, "public_key_logged", '{"level":30,"time":1764109646001,"msg":"jwks","key":"-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\\n-----END PUBLIC KEY-----"}')
tn(S, "trace_ids", '{"level":30,"time":1764109646002,"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","msg":"span"}')
tn(S, "passwordless_flag", '{"level":30,"time":1764109646003,"msg":"login","passwordless":true,"password_set":false}')
tp(S, "amqp_default_creds", '{"level":40,"time":1764109646004,"msg":"connecting","url":"amqp://guest:guest@rabbitmq:5672/"}', "url_credentials")

# --- syslog ------------------------------------------------------------------
S = "syslog"
for i in range(20):
    tn(S, f"cron_{i}", f"Nov 25 10:{i:02d}:01 web-1 CRON[{8000 + i}]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)")
for i in range(10):
    tn(S, f"systemd_{i}", f"Nov 25 10:{i:02d}:30 web-1 systemd[1]: Started papyrs-worker@{i}.service - Papyrs background worker {i}.")
for i in range(5):
    tn(S, f"kernel_ufw_{i}", f"Nov 25 10:{i:02d}:40 web-1 kernel: [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=203.0.113.{i + 1} DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={30000 + i} DF PROTO=TCP SPT={40000 + i} DPT=23 WINDOW=64240 RES=0x00 SYN URGP=0")
cards = [("4111 1111 1111 1111", "visa"), ("5500-0000-0000-0004", "mastercard"), ("378282246310005", "amex"),
         ("6011000990139424", "discover"), ("3530111333300000", "jcb"), ("30569309025904", "diners"),
         ("4000056655665556", "visa_debit"), ("2223003122003222", "mastercard_2series"),
         ("6200000000000005", "unionpay"), ("4012 8888 8888 1881", "visa_spaced")]
for i, (c, n) in enumerate(cards):
    tp(S, f"card_{n}", f"Nov 25 11:{i:02d}:00 web-1 papyrs-billing[{8100 + i}]: charge failed for account {i + 100}: card={c} amount=1900 currency=EUR", "card_number", c, c.replace(" ", "").replace("-", ""))
non_cards = [("phone", "+1 415 555 0132"), ("iban", "DE89 3704 0044 0532 0130 00"),
             ("ms_timestamp", "1764109640123"), ("not_luhn_visa", "4111111111111121"),
             ("isbn", "978-3-16-148410-0"), ("uuid_digits", "12345678-1234-1234-1234-123456789012"),
             ("ns_timestamp", "1764109640123456789"), ("hex_sha", "a4111111111111111f0c")]
for i, (n, v) in enumerate(non_cards):
    tn(S, f"not_card_{n}", f"Nov 25 11:2{i}:00 web-1 papyrs-app[{8200 + i}]: ref={v} status=ok")
tp(S, "private_key_header", "Nov 25 11:30:00 web-1 deploy.sh[8300]: -----BEGIN OPENSSH PRIVATE KEY-----", "private_key_block")
tn(S, "certificate_header", "Nov 25 11:30:01 web-1 deploy.sh[8300]: -----BEGIN CERTIFICATE-----")
tp(S, "redis_url_creds", "Nov 25 11:31:00 web-1 papyrs-worker[8301]: connecting to redis://:R3disAuth-x9@127.0.0.1:6379/0", "url_credentials", "R3disAuth-x9")
tn(S, "redis_url_no_creds", "Nov 25 11:31:01 web-1 papyrs-worker[8301]: connecting to redis://127.0.0.1:6379/0")
tn(S, "ssh_url", "Nov 25 11:31:02 web-1 deploy.sh[8302]: fetching ssh://git@github.com:22/papyrs/site.git")
tp(S, "keyvalue_passphrase", "Nov 25 11:32:00 web-1 backup[8303]: borg create repo=ssh://backup@b1/./repo BORG_PASSPHRASE=b0rg-Passphrase-long", "password_assignment", "b0rg-Passphrase-long")
tn(S, "passphrase_env_unset", "Nov 25 11:32:01 web-1 backup[8303]: BORG_PASSPHRASE is not set, using passcommand")
tn(S, "dhcp", "Nov 25 11:33:00 web-1 systemd-networkd[412]: eth0: DHCPv4 address 192.0.2.10/24, gateway 192.0.2.1 acquired from 192.0.2.1")
tp(S, "basic_auth_curl_verbose", "Nov 25 11:34:00 web-1 healthcheck[8304]: > Authorization: Basic " + b64("monitor:M0nitor-Pw") , "basic_auth_header", b64("monitor:M0nitor-Pw"))
tn(S, "www_authenticate_basic", 'Nov 25 11:34:01 web-1 healthcheck[8304]: < WWW-Authenticate: Basic realm="Restricted"')
tn(S, "www_authenticate_bearer", 'Nov 25 11:34:02 web-1 healthcheck[8304]: < WWW-Authenticate: Bearer realm="api", error="invalid_token"')
case(S, "two_secrets_one_line", "Nov 25 11:35:00 web-1 papyrs-app[8305]: signup debug password=Tw0-Secrets! card=4111111111111111", ["password_assignment", "card_number"], ["Tw0-Secrets!"])

# --- logfmt application log (Go/Node services) -------------------------------
S = "app_logfmt"
keys = ["password", "passwd", "db_password", "user.password", "new_password", "current_password",
        "smtp_password", "redis-password", "ldap_bind_password", "admin_pwd", "db_pass", "mysql_pwd",
        "Password", "PASSWORD", "passphrase", "key_passphrase"]
vals = ["Kx7#pLm2Qz", "summer-Breeze-91", "9f8e7d6c5b4a", "Z!x2c3v4b5n6", "oRange-Tree-77",
        "plain words4", "Tz0-Ab1-Cd2", "w1nterIsC0ming", "m3ss4g3-Pw", "Qq1Ww2Ee3Rr4"]
for i, k in enumerate(keys):
    v = vals[i % len(vals)].replace(" ", "_") + str(i)
    tp(S, f"logfmt_{k.replace('.', '_').replace('-', '_').lower()}_{i}", f'time=2026-11-25T10:{i:02d}:00Z level=debug msg="connecting" service=papyrs-{i} {k}={v} host=db.internal', "password_assignment", v)
for i, k in enumerate(keys[:10]):
    v = vals[(i + 3) % len(vals)].replace(" ", "-") + f"x{i}"
    tp(S, f"json_{k.replace('.', '_').replace('-', '_').lower()}_{i}", f'{{"ts":"2026-11-25T11:{i:02d}:00Z","level":"debug","msg":"config loaded","{k}":"{v}","pool":10}}', "password_assignment", v)
for i, k in enumerate(keys[:8]):
    tp(S, f"yaml_dump_{i}", f"2026-11-25T12:{i:02d}:00Z debug config: {k}: {vals[i].replace(' ', '')}Y{i}", "password_assignment", vals[i].replace(' ', '') + f"Y{i}")
placeholders = ["", "***", "******", "<redacted>", "[REDACTED]", "[FILTERED]", "REDACTED", "<hidden>", "${DB_PASSWORD}",
                "$DB_PASSWORD", "{{ db_password }}", "null", "none", "(hidden)", "xxxxxxxx", "%s", "<nil>", "undefined", "false", "true"]
for i, ph in enumerate(placeholders):
    tn(S, f"logfmt_placeholder_{i}", f'time=2026-11-25T13:{i:02d}:00Z level=info msg="connecting" password={ph} host=db.internal')
    tn(S, f"json_placeholder_{i}", f'{{"ts":"2026-11-25T13:{i:02d}:30Z","level":"info","msg":"config","password":"{ph}"}}')
for i, k in enumerate(["password_reset_sent", "password_changed_at", "password_expires_in", "password_strength",
                       "password_policy", "password_length", "passwordless", "password_required", "has_password",
                       "password_set", "passes", "compass", "bypass", "passenger_id", "pass_count", "pwd_changed"]):
    v = ["true", "2026-11-25", "30d", "strong", "default", "12", "true", "false", "true", "false", "3", "north", "1", "42", "7", "no"][i]
    case(S, f"not_a_password_key_{k}", f"time=2026-11-25T14:{i:02d}:00Z level=info msg=ok {k}={v} user=42")
schemes = [("mysql", "db.internal:3306/papyrs"), ("mongodb+srv", "cluster0.example.net/papyrs"), ("ftp", "files.example.net/in"),
           ("smtp", "smtp.example.net:587"), ("https", "registry.example.net/v2/"), ("amqps", "mq.example.net:5671/%2f"),
           ("postgresql", "10.0.0.5/papyrs"), ("sftp", "backup.example.net:22/srv")]
for i, (sc, rest) in enumerate(schemes):
    pw = f"Ur1-Pw{i}-{sc.replace('+', '')}"
    tp(S, f"url_creds_{sc.replace('+', '_')}", f'time=2026-11-25T15:{i:02d}:00Z level=error msg="dial failed" dsn={sc}://svc{i}:{pw}@{rest} err="timeout"', "url_credentials", pw)
    tn(S, f"url_no_creds_{sc.replace('+', '_')}", f'time=2026-11-25T15:{i:02d}:30Z level=info msg="dialing" dsn={sc}://svc{i}@{rest}')
    tn(S, f"url_masked_creds_{sc.replace('+', '_')}", f'time=2026-11-25T15:{i:02d}:45Z level=info msg="dialing" dsn={sc}://svc{i}:****@{rest}')
for i in range(6):
    u, p = f"svc{i}", f"B4sic-Cred-{i}x"
    hdr = ["Authorization", "authorization", "AUTHORIZATION", "Proxy-Authorization", "authorization", "Authorization"][i]
    basic = ["Basic", "basic", "BASIC", "Basic", "Basic", "Basic"][i]
    tp(S, f"basic_header_{i}", f'time=2026-11-25T16:{i:02d}:00Z level=debug msg="outgoing request" header="{hdr}: {basic} {b64(u + ":" + p)}"', "basic_auth_header", b64(u + ":" + p))
for i in range(6):
    tok = f"tok{i}_" + "".join("abcdefghjkmnpqrstuvwxyz23456789"[(i * 7 + j * 5) % 31] for j in range(40))
    tp(S, f"bearer_header_{i}", f'time=2026-11-25T17:{i:02d}:00Z level=debug msg="outgoing request" header="Authorization: Bearer {tok}"', "bearer_token", tok)
for i, t in enumerate(["Bearer", "Bearer <token>", "Bearer ${TOKEN}", "Bearer null", "Bearer ***", "Bearer [REDACTED]"]):
    tn(S, f"bearer_placeholder_{i}", f'time=2026-11-25T17:{i:02d}:30Z level=debug msg="outgoing request" header="Authorization: {t}"')
hashes = [("bcrypt_2a", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"),
          ("bcrypt_2y", "$2y$12$KIXQJ1vF8rL0aTg3Zb4mEuYx9vQe5tR2sW7uI8oP1aS3dF6gH9jK."),
          ("sha256_crypt", "$5$rounds=535000$xT2pQ9sLm4Nv$Gq8bV3cK6zX1wE7rT4yU0iO9pA2sD5fG8hJ1kL3zX6C"),
          ("md5_crypt", "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1"),
          ("yescrypt", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"),
          ("scrypt", "$7$CU..../....yFtyXXvHgpCuH9GJ5Lh8l1$dVqJp7rG8dC5hWqN2tZ4bX6cF9vK1mL3nP5sR7tU0wY"),
          ("argon2i", "$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"),
          ("pbkdf2_sha512", "$pbkdf2-sha512$25000$LyWE0HrP2RsjZCxlDGFMKQ$1vC7.jR8qO2eT5yU9iI0oP3aS6dF8gH1jK4lZ7xC0vB")]
for i, (n, h) in enumerate(hashes):
    tp(S, f"hash_{n}", f"time=2026-11-25T18:{i:02d}:00Z level=debug msg=\"user loaded\" id={i} hash={h}", "password_hash", h.split("$")[-1])
for i, t in enumerate(["ghp_" + "Ab1" * 12, "gho_" + "Zy9" * 12, "ghs_" + "Qw2" * 12, "github_pat_" + "11ABCDEFG0" + "aB3_" * 15 + "x9"]):
    tp(S, f"github_{t[:4]}", f"time=2026-11-25T19:{i:02d}:00Z level=warn msg=\"clone failed\" token={t}", "github_token", t)
for i, t in enumerate(["xoxp-1234567890-0987654321-Ab12Cd34Ef56", "xoxa-2-Zz99Yy88Xx77Ww66Vv55"]):
    tp(S, f"slack_{t[:4]}", f"time=2026-11-25T19:{i:02d}:30Z level=warn msg=\"slack\" token={t}", "slack_token", t)
for i, k in enumerate(["AKIAJ7Q2W3E4R5T6Y7U8", "ASIAQ2W3E4R5T6Y7U8I9"]):
    tp(S, f"aws_key_{k[:4]}", f"time=2026-11-25T19:{i:02d}:45Z level=debug msg=\"aws\" access_key_id={k} region=eu-west-1", "aws_access_key_id", k)
tn(S, "aws_like_lowercase", "time=2026-11-25T19:50:00Z level=info msg=ok id=akiaj7q2w3e4r5t6y7u8")
tn(S, "uuid_request_id", "time=2026-11-25T19:51:00Z level=info msg=ok request_id=9b2f0c4e-3d1a-4f5b-8c7d-6e5f4a3b2c1d")
tn(S, "sha256_digest", "time=2026-11-25T19:52:00Z level=info msg=ok digest=sha256:4111111111111111aa9b2f0c4e3d1a4f5b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e")
tn(S, "stripe_test_key", "time=2026-11-25T19:53:00Z level=info msg=ok key=sk_test_4eC39HqLyjWDarjtT1zdp7dc")
tp(S, "stripe_restricted", "time=2026-11-25T19:54:00Z level=error msg=denied key=rk_live_51Hx7Yq2eZvKYlo2C8r9Tq3Wm2", "stripe_secret_key", "rk_live_51Hx7Yq2eZvKYlo2C8r9Tq3Wm2")
cards2 = ["4532015112830366", "4916338506082832", "5425233430109903", "2221000000000009", "374245455400126",
          "6011514433546201", "3566002020360505", "36227206271667", "4000 0000 0000 0002", "5105-1051-0510-5100",
          "4929 1234 5678 9012 343", "6250941006528599", "4242-4242-4242-4242", "4000002500003155"]
for i, c in enumerate(cards2):
    digits = c.replace(" ", "").replace("-", "")
    tp(S, f"card_{i}", f'time=2026-11-25T20:{i:02d}:00Z level=error msg="payment declined" order=ord_{9000 + i} pan="{c}"', "card_number", c, digits)
noncards = ["4532015112830367", "5425233430109904", "1234567890123456", "9999999999999995", "0000 0000 0000 0000",
            "2026-11-25 20:00:00", "+44 20 7946 0958 12", "192.168.100.200", "4111-1111", "order-4111111111111111x",
            "12345678901234567890123", "v4.11.1111.1111"]
for i, c in enumerate(noncards):
    tn(S, f"not_card_{i}", f'time=2026-11-25T21:{i:02d}:00Z level=info msg="lookup" ref="{c}"')


def main():
    os.makedirs(ROOT, exist_ok=True)
    os.makedirs(EXPECT, exist_ok=True)
    total_tp = total_tn = 0
    for source, items in cases.items():
        with open(os.path.join(ROOT, source + ".log"), "w") as log, \
             open(os.path.join(EXPECT, source + ".tsv"), "w") as exp:
            for n, (name, text, codes, secrets) in enumerate(items, 1):
                assert "\n" not in text and "\t" not in name
                log.write(text + "\n")
                exp.write(f"{n}\t{','.join(codes) or '-'}\t{name}\t{','.join(secrets)}\n")
                if codes:
                    total_tp += len(codes)
                else:
                    total_tn += 1
    print(f"{total_tp} true positives, {total_tn} true negatives")


main()
