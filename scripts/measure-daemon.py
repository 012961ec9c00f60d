#!/usr/bin/env python3
"""Daemon figures for a closing note: start to READY, RSS after the first (full) sync of a
120-student simulated school, CPU time per sync run, SIGTERM time.

Usage: scripts/measure-daemon.py target/release/fehlzeiten
"""
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

F = os.path.abspath(sys.argv[1])
d = tempfile.mkdtemp()
os.chdir(d)
SIM_PORT, STATUS_PORT = free_port(), free_port()
sim = subprocess.Popen([F, "simulate-untis", "--listen", f"127.0.0.1:{SIM_PORT}", "--students", "120"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
out = ""
while "[[school]]" not in out:
    out += sim.stdout.readline()
snippet = ""
for line in sim.stdout:
    if line.startswith("Stop with"): break
    snippet += line
snippet = "[[school]]\n" + snippet.replace("/etc/fehlzeiten/sim.untis.secret", "untis.secret")
open("untis.secret", "w").write("sim-password\n"); os.chmod("untis.secret", 0o600)
open("f.toml", "w").write('[daemon]\ndata_dir = "state"\nstatus_listen = "127.0.0.1:' + str(STATUS_PORT) + '"\n[mail]\nfrom = "f@schule.example"\ntransport = "file"\nfile_dir = "mails"\n' + snippet)
sock_path = os.path.join(d, "notify.sock")
if os.path.exists(sock_path): os.unlink(sock_path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sock_path); s.settimeout(10)
env = dict(os.environ, NOTIFY_SOCKET=sock_path)
t0 = time.monotonic()
p = subprocess.Popen([F, "--config", "f.toml", "run"], env=env, stderr=subprocess.DEVNULL)
while True:
    msg = s.recv(4096).decode()
    if "READY=1" in msg: break
ready = time.monotonic() - t0
def status():
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{STATUS_PORT}/status"))
def proc():
    st = open(f"/proc/{p.pid}/status").read()
    rss = int([l for l in st.splitlines() if l.startswith("VmRSS")][0].split()[1])
    hwm = int([l for l in st.splitlines() if l.startswith("VmHWM")][0].split()[1])
    fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, hwm, cpu
while not (status()["schools"][0]["last_sync"] or {}).get("finished"): time.sleep(0.05)
time.sleep(2)
rss1, hwm1, cpu1 = proc()
first = status()["schools"][0]["last_sync"]["started"]
runs = []
for i in range(5):
    before = proc()[2]; last = status()["schools"][0]["last_sync"]["started"]
    os.kill(p.pid, signal.SIGUSR1)
    while status()["schools"][0]["last_sync"]["started"] == last: time.sleep(0.02)
    time.sleep(1.0)
    runs.append(proc()[2] - before)
rss2, hwm2, cpu2 = proc()
print(f"start to READY: {ready*1000:.1f} ms")
print(f"after first (full) sync + 2 s idle: VmRSS {rss1} KiB, peak VmHWM {hwm1} KiB, CPU so far {cpu1:.2f} s")
print(f"CPU per incremental sync run (SIGUSR1, 5 runs): {', '.join(f'{r:.2f}' for r in runs)} s")
print(f"after 5 more runs: VmRSS {rss2} KiB, peak VmHWM {hwm2} KiB")
p.send_signal(signal.SIGTERM); t = time.monotonic(); rc = p.wait(); print(f"SIGTERM: exit {rc} after {(time.monotonic()-t)*1000:.0f} ms")
sim.terminate()
import shutil
shutil.rmtree(d, ignore_errors=True)
