# Database growth per report (BENCHMARKS.md, issue 22). REPORT=a vigil-agent check --format json output; REPORTER=the binary.
import json, os, subprocess, time, uuid, datetime, urllib.request, sys, glob
B=os.environ.get('REPORTER','target/debug/vigil-reporter')
d=os.environ.get('DATA','/tmp/vigil-grow'); subprocess.run(['rm','-rf',d])
port=18777
env=dict(os.environ, VIGIL_ENROLL_SECRET='s'*24, VIGIL_LOG='warn')
p=subprocess.Popen([B,'serve','--plain-http','--listen',f'127.0.0.1:{port}','--data',d],env=env,stdout=subprocess.DEVNULL)
base=f'http://127.0.0.1:{port}'
for _ in range(100):
    try: urllib.request.urlopen(base+'/healthz'); break
    except Exception: time.sleep(0.2)
def req(path, body, tok=None):
    r=urllib.request.Request(base+path, data=json.dumps(body, separators=(',',':'), ensure_ascii=False).encode(), headers={'content-type':'application/json', **({'authorization':'Bearer '+tok} if tok else {})})
    return json.load(urllib.request.urlopen(r))
tok=req('/api/v1/enroll',{'secret':'s'*24,'host':'vm','interval_secs':900})['token']
rep=json.load(open(os.environ.get('REPORT','/tmp/s22/papyrs-report.json')))
def size():
    # pages in use (WAL included: sqlite3 reads through it), not the files:
    # the WAL file is reused after checkpoints and says little about growth
    out=subprocess.run(['sqlite3', glob.glob(d+'/*.db')[0], 'PRAGMA page_count; PRAGMA freelist_count; PRAGMA page_size;'],
                       capture_output=True, text=True, check=True).stdout.split()
    pages, free, psize = (int(x) for x in out)
    return (pages-free)*psize
def post(n, start):
    for i in range(n):
        rep['report_id']=str(uuid.uuid4())
        t=(start+datetime.timedelta(minutes=15*i)).strftime('%Y-%m-%dT%H:%M:%S.000Z')
        rep['started_at']=t; rep['finished_at']=t
        req('/api/v1/reports',rep,tok)  # posted compact, as the daemon ships it
now=datetime.datetime.utcnow()-datetime.timedelta(hours=30)
post(4, now); time.sleep(1)
s0=size(); N=int(sys.argv[1]); post(N, now+datetime.timedelta(hours=1))
time.sleep(1); s1=size()
print('report_bytes', len(json.dumps(rep, separators=(',',':'), ensure_ascii=False).encode()), 'db_growth_per_report', (s1-s0)/N)
p.terminate(); p.wait()
subprocess.run(['sqlite3', glob.glob(d+'/*.db')[0], "select 'latest_results', sum(length(checks)+length(title)+100), count(*) from latest_results; select 'reports', count(*), sum(length(body)), sum(length(body_zstd)) from reports; select 'control_daily', count(*) from control_daily;"])
