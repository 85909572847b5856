"""The booting half of the local cloud (dev/boot): a node for every server.

Nova's fake driver makes servers ACTIVE and runs nothing. This daemon does
what a hypervisor, Neutron's L3 agent and its metadata agent would do for
them, on this machine:

- every ACTIVE server gets a node: a systemd-nspawn container booted from
  the Flatcar-shaped rootfs (an overlay, so its disk survives a reboot),
  in a network namespace with the server's port (MAC, address, MTU,
  default route to its router);
- every Neutron network of a booted node is a bridge in a namespace of its
  own; every router is a namespace with its interfaces, its external
  gateway on a bridge of the host (the external network's gateway address
  is the host's), and the floating IPs as DNAT/SNAT rules, as Neutron's
  legacy routers do;
- the metadata service: the router answers 169.254.169.254:80 and passes
  each request to Nova's metadata API with the instance it came from
  (X-Instance-ID and its HMAC signature), as neutron-metadata-agent does;
- Heat: the wait condition handles' curl_cli name Heat's endpoint on
  127.0.0.1, so each node's loopback forwards that port to the host's.

A server that goes away takes its node with it (disk and all); a node
whose container reboots (`systemctl reboot` inside) is started again on
the same disk. Nothing here reads or changes a node's user_data.

Run by `dev/boot/boot up` as root; stops everything it made on SIGTERM.
"""

import argparse
import ctypes
import fnmatch
import hashlib
import hmac
import http.client
import http.server
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openstack

CLONE_NEWNET = 0x40000000
# Debian's Ignition (2.14, spec 3.3), the program its dracut module runs.
IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition"
GUARD_METRIC = "999999"
METADATA_IP = "169.254.169.254"
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def run(*cmd, check=True, input=None):
    r = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def short(uuid):
    return uuid.replace("-", "")[:8]


def listen_in_netns(netns, host, port):
    """A listening TCP socket that lives in NETNS: the calling thread enters
    the namespace only to make it (setns is per thread), then comes back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(64)
            return s
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                # A thread stuck in another namespace would poison every later call.
                os._exit(70)
    finally:
        os.close(own)
        os.close(target)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True

    def __init__(self, sock, handler):
        super().__init__(sock.getsockname(), handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


def splice(a, b):
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()


class Forward(socketserver.BaseRequestHandler):
    """A node's 127.0.0.1:PORT to the host's 127.0.0.1:PORT (Heat)."""

    def handle(self):
        port = self.server.target_port
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as e:
            log(f"forward to 127.0.0.1:{port}: {e}")
            return
        upstream.settimeout(None)
        with upstream:
            splice(self.request, upstream)


class Metadata(http.server.BaseHTTPRequestHandler):
    """169.254.169.254 in a router: Nova's metadata API, told which instance asks."""

    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        hv = self.server.hypervisor
        ip = self.client_address[0]
        owner = hv.metadata_owner(self.server.router_id, ip)
        if owner is None:
            log(f"metadata: no instance at {ip} behind router {short(self.server.router_id)}")
            self.send_error(404, "no instance at this address")
            return
        instance, project = owner
        headers = hv.metadata_headers(instance, project, ip)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", hv.metadata_port, timeout=30)
            conn.request("GET", self.path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except OSError as e:
            self.send_error(502, f"metadata API: {e}")
            return
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type", "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class IgnitionFailed(Exception):
    pass


class Node:
    def __init__(self, hv, server):
        self.hv = hv
        self.id = server.id
        self.name = server.name
        self.project = server.project_id
        self.dir = hv.state / "nodes" / server.id
        self.netns = f"pvbn{short(server.id)}"
        self.proc = None
        self.forward = None
        self.boots = 0
        self.booted_at = None
        self.off = False  # powered off from inside: stays off

    # -- disk --------------------------------------------------------------
    def prepare_disk(self, faults):
        d = self.dir
        fresh = not d.exists()
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if fresh:
            seed = self.hv.images / "seed"
            for f in sorted(faults):
                if (self.hv.images / f"seed-{f}").is_dir():
                    seed = self.hv.images / f"seed-{f}"
            # Docker's own folder is a plain directory (overlay2 cannot sit
            # on overlayfs), copied from the seed: the images are "pulled".
            run("cp", "-a", "--reflink=auto", str(seed), str(d / "docker"))
            (d / "faults").write_text(" ".join(sorted(faults)) + "\n")
            (d / "server.json").write_text(json.dumps({"id": self.id, "name": self.name}) + "\n")
        if not os.path.ismount(d / "root"):
            run(
                "mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir={self.hv.rootfs},upperdir={d / 'upper'},workdir={d / 'work'}", str(d / "root"),
            )

    # -- network -----------------------------------------------------------
    def wire(self, ports):
        ns = self.netns
        if not Path(f"/run/netns/{ns}").exists():
            run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        # Docker in the node needs forwarding, and nspawn makes /proc/sys/net
        # read-only inside: set it before the boot.
        run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, p in enumerate(ports):
            ifname = f"eth{i}"
            switch = self.hv.switch(p["network"])
            peer = f"n{short(self.id)}{i}"
            if run("ip", "-n", ns, "link", "show", ifname, check=False).strip() == "":
                self.hv.veth(ns, ifname, switch, peer)
                run("ip", "-n", switch, "link", "set", peer, "master", "br0", "up")
                run("ip", "-n", ns, "link", "set", ifname, "address", p["mac"], "mtu", str(p["mtu"]))
            run("ip", "-n", ns, "addr", "replace", f"{p['ip']}/{p['prefix']}", "dev", ifname)
            run("ip", "-n", ns, "link", "set", ifname, "up")
            if i == 0 and p["gateway"]:
                run("ip", "-n", ns, "route", "replace", "default", "via", p["gateway"], "dev", ifname)
        if self.forward is None:
            s = listen_in_netns(ns, "127.0.0.1", self.hv.heat_port)
            self.forward = Server(s, Forward)
            self.forward.target_port = self.hv.heat_port

    # -- cgroups ------------------------------------------------------------
    def cgroups(self):
        """A cgroup of its own in every hierarchy: nspawn --keep-unit runs the
        container in the cgroup it is started in, and containers sharing one
        would make their units' cgroups in the same place and remove each
        other's (units then fail with status 219/CGROUP)."""
        root = Path("/sys/fs/cgroup")
        tops = [root] if (root / "cgroup.procs").exists() else [d for d in root.iterdir() if (d / "cgroup.procs").exists()]
        return [top / "provision-boot" / short(self.id) for top in tops]

    def make_cgroups(self):
        for cg in self.cgroups():
            for d in (cg.parent, cg):
                if not d.exists():
                    d.mkdir()
                    # A v1 cpuset starts empty, and nothing can join an empty one.
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        if (d / f).exists() and not (d / f).read_text().strip():
                            (d / f).write_text((d.parent / f).read_text())

    def remove_cgroups(self):
        for cg in self.cgroups():
            if cg.exists():
                for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [cg]:
                    try:
                        d.rmdir()
                    except OSError:
                        pass

    # -- first boot ----------------------------------------------------------
    def user_data(self):
        """The server's user_data, as the node would read it from the metadata service."""
        return self.hv.metadata_get(self.id, self.project, "/openstack/latest/user_data")

    def ignite(self):
        """Flatcar's first boot: Ignition runs in the initramfs, before systemd,
        unless the user_data is a cloud-config or a script (Flatcar's Ignition
        leaves those to coreos-cloudinit). Debian's ignition binary runs its
        fetch and files stages against the node's root, in the node's network
        namespace, so it reads the config from the metadata service itself."""
        data = self.user_data() or b""
        first = data.split(b"\n", 1)[0].strip()
        if not data.strip() or first == b"#cloud-config" or first.startswith(b"#!"):
            return False
        run_dir = self.dir / "ignition"
        run_dir.mkdir(exist_ok=True)
        log_path = self.dir / "console.log"
        for stage in ("fetch", "files"):
            cmd = [
                "nsenter", f"--net=/run/netns/{self.netns}", IGNITION, "-root", str(self.dir / "root"),
                "-platform", "openstack", "-stage", stage, "-log-to-stdout",
                "-config-cache", str(run_dir / "config.json"), "-state-file", str(run_dir / "state"),
                "-neednet", str(run_dir / "neednet"), "-fetch-timeout", "1m",
            ]
            with open(log_path, "ab") as out:
                out.write(f"=== provision-boot: ignition --stage {stage}\n".encode())
                out.flush()
                rc = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.hv.ignition_env()
                ).returncode
            if rc != 0:
                # As on Flatcar: a config Ignition cannot apply stops the boot.
                raise IgnitionFailed(f"ignition --stage {stage} failed (exit {rc}); the node does not boot (see its console)")
        # Ignition enables units through presets, which systemd applies at a
        # first boot: a machine id not yet made says this is one.
        (self.dir / "root/etc/machine-id").write_text("uninitialized\n")
        # coreos-cloudinit does not run on a node Ignition provisioned.
        mask = self.dir / "root/etc/systemd/system/oem-cloudinit.service"
        if mask.exists() or mask.is_symlink():
            mask.unlink()
        mask.symlink_to("/dev/null")
        (self.dir / "format").write_text("ignition\n")
        log(f"{self.name}: Ignition applied its config")
        return True

    # -- power -------------------------------------------------------------
    def start(self):
        self.boots += 1
        self.booted_at = time.time()
        console = open(self.dir / "console.log", "ab")
        console.write(f"\n=== provision-boot: boot {self.boots} of {self.name} ({self.id})\n".encode())
        console.flush()
        cmd = [
            "systemd-nspawn", "--boot", "--directory", str(self.dir / "root"),
            "--register=no", "--keep-unit", "--console=read-only", "--hostname=localhost",
            "--capability=all", "--system-call-filter=@keyring bpf",
            f"--network-namespace-path=/run/netns/{self.netns}",
            f"--bind={self.dir / 'docker'}:/var/lib/docker",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        ]
        self.make_cgroups()
        procs = [str(cg / "cgroup.procs") for cg in self.cgroups()]

        def join_cgroups():  # in the child, before nspawn runs
            for f in procs:
                with open(f, "w") as fh:
                    fh.write(str(os.getpid()))

        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=join_cgroups,
        )
        console.close()
        (self.dir / "nspawn.pid").write_text(f"{self.proc.pid}\n")
        log(f"{self.name}: boot {self.boots} (nspawn pid {self.proc.pid})")

    def leader(self):
        """The container's PID 1, as the host sees it."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def check(self):
        """Restart a container that rebooted; note one that stopped."""
        if self.proc is None or self.off:
            return
        rc = self.proc.poll()
        if rc is None:
            return
        self.proc = None
        if rc == 133:
            log(f"{self.name}: rebooted; booting it again on the same disk")
            self.start()
        else:
            log(f"{self.name}: container ended (exit {rc}); it stays off")
            self.off = True

    def stop(self, timeout=20):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            # nspawn passes TERM on as a clean shutdown of the container.
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: no clean shutdown in {timeout} s; killing it")
                p.kill()
                p.wait()
        if self.forward is not None:
            self.forward.stop()
            self.forward = None

    def destroy(self):
        self.stop()
        self.remove_cgroups()
        root = self.dir / "root"
        if os.path.ismount(root):
            run("umount", str(root))
        if Path(f"/run/netns/{self.netns}").exists():
            run("ip", "netns", "del", self.netns)
        shutil.rmtree(self.dir, ignore_errors=True)
        log(f"{self.name}: removed")


class Hypervisor:
    def __init__(self, args):
        self.state = Path(args.state)
        self.rootfs = Path(args.rootfs)
        self.images = Path(args.images)
        self.metadata_port = args.metadata_port
        self.metadata_secret = args.metadata_secret
        self.conn = openstack.connect(cloud=args.cloud)
        self.heat_port = self.endpoint_port("orchestration")
        self.nodes = {}  # server id -> Node
        self.switches = {}  # network id -> netns
        self.routers = {}  # router id -> {"netns", "metadata", "nat", "networks"}
        self.externals = {}  # network id -> host bridge
        self.host_address = None  # the first external gateway: where nodes reach the host
        self.guards = []  # cidrs we made unreachable on the host
        self.owners = {}  # router id -> {ip: (instance, project)}
        self.stopping = False

    def endpoint_port(self, service):
        url = self.conn.session.get_endpoint(service_type=service, interface="public")
        from urllib.parse import urlsplit

        return urlsplit(url).port or 80

    # -- host side ---------------------------------------------------------
    def veth(self, ns_a, name_a, ns_b, name_b):
        """A veth pair, one end NAME_A in NS_A, the other NAME_B in NS_B
        (None: the host)."""
        ta, tb = f"pvt{secrets.token_hex(4)}", f"pvt{secrets.token_hex(4)}"
        run("ip", "link", "add", ta, "type", "veth", "peer", "name", tb)
        for t, ns, name in ((ta, ns_a, name_a), (tb, ns_b, name_b)):
            if ns is None:
                run("ip", "link", "set", t, "name", name)
            else:
                run("ip", "link", "set", t, "netns", ns)
                run("ip", "-n", ns, "link", "set", t, "name", name)

    def guard(self, cidr):
        """An unreachable route for a tenant range, so that nothing the
        tests send to it can leave the machine; never over the resolver."""
        net = ipaddress.ip_network(cidr)
        if net.version != 4 or cidr in self.guards:
            return
        for r in resolvers():
            if ipaddress.ip_address(r) in net:
                raise RuntimeError(f"{cidr} covers the resolver {r}: refusing to wire it")
        existing = run("ip", "-4", "route", "show", "type", "unreachable")
        if not any(line.split()[1:2] == [cidr] for line in existing.splitlines()):
            before = route_to_resolvers()
            run("ip", "route", "add", "unreachable", cidr, "metric", GUARD_METRIC)
            if route_to_resolvers() != before:
                run("ip", "route", "del", "unreachable", cidr, "metric", GUARD_METRIC)
                raise RuntimeError(f"a guard for {cidr} changed the route to the resolver")
            self.guards.append(cidr)
            log(f"guard: {cidr} unreachable from the host (metric {GUARD_METRIC})")

    def external(self, network_id):
        """The external network: a bridge on the host holding its gateway address."""
        if network_id in self.externals:
            return self.externals[network_id]
        br = f"pvbx{short(network_id)}"
        subnets = [s for s in self.conn.network.subnets(network_id=network_id) if s.ip_version == 4]
        for s in subnets:
            self.guard(s.cidr)
        if run("ip", "link", "show", br, check=False).strip() == "":
            run("ip", "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        for s in subnets:
            if s.gateway_ip:
                prefix = ipaddress.ip_network(s.cidr).prefixlen
                run("ip", "addr", "replace", f"{s.gateway_ip}/{prefix}", "dev", br)
                self.host_address = self.host_address or s.gateway_ip
        run("ip", "link", "set", br, "up")
        self.externals[network_id] = br
        log(f"external network {short(network_id)}: host bridge {br} ({', '.join(s.cidr for s in subnets)})")
        return br

    def switch(self, network_id):
        if network_id in self.switches:
            return self.switches[network_id]
        ns = f"pvbs{short(network_id)}"
        if not Path(f"/run/netns/{ns}").exists():
            run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        if run("ip", "-n", ns, "link", "show", "br0", check=False).strip() == "":
            run("ip", "-n", ns, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        run("ip", "-n", ns, "link", "set", "br0", "up")
        self.switches[network_id] = ns
        return ns

    # -- routers -----------------------------------------------------------
    def router(self, router, interfaces, subnets):
        """Router namespace: its interfaces, its gateway on the host bridge,
        the metadata service. INTERFACES: [(network id, ip, prefix)]."""
        r = self.routers.get(router.id)
        ns = f"pvbr{short(router.id)}"
        if r is None:
            if not Path(f"/run/netns/{ns}").exists():
                run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            run("ip", "-n", ns, "addr", "replace", f"{METADATA_IP}/32", "dev", "lo")
            r = {"netns": ns, "networks": set(), "nat": None, "gateway": None, "fips": set()}
            server = Server(listen_in_netns(ns, METADATA_IP, 80), Metadata)
            server.hypervisor = self
            server.router_id = router.id
            r["metadata"] = server
            self.routers[router.id] = r
            log(f"router {router.name or short(router.id)}: namespace {ns}, metadata on {METADATA_IP}:80")
        gw = router.external_gateway_info or {}
        if gw.get("network_id") and r["gateway"] is None:
            br = self.external(gw["network_id"])
            ext = [f for f in gw.get("external_fixed_ips", []) if ":" not in f["ip_address"]]
            if ext:
                sub = subnets[ext[0]["subnet_id"]]
                prefix = ipaddress.ip_network(sub.cidr).prefixlen
                host_end = f"pvbg{short(router.id)}"
                if run("ip", "-n", ns, "link", "show", "qg", check=False).strip() == "":
                    self.veth(ns, "qg", None, host_end)
                    run("ip", "link", "set", host_end, "master", br, "up")
                run("ip", "-n", ns, "addr", "replace", f"{ext[0]['ip_address']}/{prefix}", "dev", "qg")
                run("ip", "-n", ns, "link", "set", "qg", "up")
                r["gateway"] = ext[0]["ip_address"]
        for network_id, ip, prefix in interfaces:
            if network_id in r["networks"]:
                continue
            switch = self.switch(network_id)
            name = f"qr{short(network_id)}"
            peer = f"r{short(router.id)}"
            if run("ip", "-n", ns, "link", "show", name, check=False).strip() == "":
                self.veth(ns, name, switch, peer)
                run("ip", "-n", switch, "link", "set", peer, "master", "br0", "up")
            run("ip", "-n", ns, "addr", "replace", f"{ip}/{prefix}", "dev", name)
            run("ip", "-n", ns, "link", "set", name, "up")
            r["networks"].add(network_id)
        return r

    def nat(self, router_id, fips):
        """Floating IPs of a router as Neutron's legacy routers have them:
        the address on the gateway, DNAT in, SNAT out."""
        r = self.routers[router_id]
        if r["gateway"] is None:
            return
        rules = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                 ":POSTROUTING ACCEPT [0:0]"]
        for fip, fixed in sorted(fips):
            rules.append(f"-A PREROUTING -d {fip}/32 -j DNAT --to-destination {fixed}")
            rules.append(f"-A POSTROUTING -s {fixed}/32 -o qg -j SNAT --to-source {fip}")
        rules.append(f"-A POSTROUTING -o qg -j SNAT --to-source {r['gateway']}")
        rules.append("COMMIT")
        text = "\n".join(rules) + "\n"
        if text == r["nat"]:
            return
        ns = r["netns"]
        run("ip", "netns", "exec", ns, "iptables-restore", input=text)
        want = {f for f, _ in fips}
        for f in want - r["fips"]:
            run("ip", "-n", ns, "addr", "replace", f"{f}/32", "dev", "qg")
        for f in r["fips"] - want:
            run("ip", "-n", ns, "addr", "del", f"{f}/32", "dev", "qg", check=False)
        r["fips"], r["nat"] = want, text
        log(f"router {short(router_id)}: floating IPs {', '.join(f'{a}->{b}' for a, b in sorted(fips)) or 'none'}")

    def ignition_env(self):
        """Debian's Ignition relabels what it wrote for SELinux with setfiles,
        as Flatcar's initramfs does; there is no SELinux policy here, so the
        setfiles it finds first does nothing."""
        bin_dir = self.state / "bin"
        shim = bin_dir / "setfiles"
        if not shim.exists():
            bin_dir.mkdir(exist_ok=True)
            shim.write_text("#!/bin/sh\n# dev/boot: no SELinux policy to label files with.\nexit 0\n")
            shim.chmod(0o755)
        return {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"}

    def metadata_owner(self, router_id, ip):
        return self.owners.get(router_id, {}).get(ip)

    def metadata_headers(self, instance, project, ip=None):
        sig = hmac.new(self.metadata_secret.encode(), instance.encode(), hashlib.sha256).hexdigest()
        headers = {"X-Instance-ID": instance, "X-Tenant-ID": project, "X-Instance-ID-Signature": sig}
        if ip:
            headers["X-Forwarded-For"] = ip
        return headers

    def metadata_get(self, instance, project, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.metadata_port, timeout=30)
        conn.request("GET", path, headers=self.metadata_headers(instance, project))
        resp = conn.getresponse()
        body = resp.read()
        return body if resp.status == 200 else None

    # -- the loop ------------------------------------------------------------
    def faults(self, name):
        out = set()
        try:
            lines = (self.state / "faults").read_text().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#") and fnmatch.fnmatchcase(name, parts[0]):
                out.add(parts[1])
        return out

    def reconcile(self):
        net = self.conn.network
        servers = {s.id: s for s in self.conn.compute.servers(details=True, all_projects=True)}
        ports = list(net.ports())
        subnets = {s.id: s for s in net.subnets()}
        networks = {n.id: n for n in net.networks()}
        routers = {r.id: r for r in net.routers()}
        fips = list(net.ips())

        # Routers on the networks of servers, and who asks for metadata where.
        router_of = {}  # network id -> router id
        interfaces = {}  # router id -> [(network, ip, prefix)]
        for p in ports:
            if p.device_owner in ("network:router_interface", "network:router_interface_distributed"):
                for f in p.fixed_ips:
                    sub = subnets.get(f["subnet_id"])
                    if sub is None or sub.ip_version != 4:
                        continue
                    prefix = ipaddress.ip_network(sub.cidr).prefixlen
                    interfaces.setdefault(p.device_id, []).append((p.network_id, f["ip_address"], prefix))
                    router_of[p.network_id] = p.device_id
        owners = {}
        by_device = {}
        for p in ports:
            if not (p.device_owner or "").startswith("compute:"):
                continue
            by_device.setdefault(p.device_id, []).append(p)
            rid = router_of.get(p.network_id)
            for f in p.fixed_ips:
                if rid:
                    owners.setdefault(rid, {})[f["ip_address"]] = (p.device_id, p.project_id)
        self.owners = owners

        for sid, node in list(self.nodes.items()):
            s = servers.get(sid)
            if s is None or s.status in ("DELETED", "SOFT_DELETED") or s.status == "SHUTOFF":
                log(f"{node.name}: server {'gone' if s is None else s.status}")
                node.destroy()
                del self.nodes[sid]

        # New nodes: the networks and routers they need first (shared), then
        # each node's disk, network and boot side by side.
        fresh = []
        for sid, s in servers.items():
            if s.status != "ACTIVE" or sid in self.nodes:
                continue
            faults = self.faults(s.name)
            if "hold" in faults:
                continue
            node_ports = []
            for p in sorted(by_device.get(sid, []), key=lambda p: p.created_at or ""):
                v4 = [f for f in p.fixed_ips if ":" not in f["ip_address"]]
                if not v4:
                    continue
                sub = subnets[v4[0]["subnet_id"]]
                self.guard(sub.cidr)
                self.switch(p.network_id)
                rid = router_of.get(p.network_id)
                if rid and rid in routers:
                    self.router(routers[rid], interfaces.get(rid, []), subnets)
                node_ports.append({
                    "network": p.network_id, "mac": p.mac_address, "ip": v4[0]["ip_address"],
                    "prefix": ipaddress.ip_network(sub.cidr).prefixlen, "gateway": sub.gateway_ip,
                    "mtu": networks[p.network_id].mtu or 1500,
                })
            if node_ports:  # else its ports are not there yet
                fresh.append((Node(self, s), faults, node_ports))

        def boot(job):
            node, faults, node_ports = job
            try:
                fresh = not node.dir.exists()
                node.prepare_disk(faults)
                node.wire(node_ports)
                if fresh:
                    node.ignite()
                node.start()
                return node
            except IgnitionFailed as e:
                log(f"{node.name}: {e}")
                node.off = True  # as in Flatcar's emergency shell: it stays down
                return node
            except Exception as e:  # one node must not stop the others
                log(f"{node.name}: could not boot: {e}")
                node.destroy()  # from scratch at the next look
                return None

        with ThreadPoolExecutor(max_workers=4) as pool:
            for node in pool.map(boot, fresh):
                if node is not None:
                    self.nodes[node.id] = node

        for rid in self.routers:
            want = set()
            for f in fips:
                if f.router_id == rid and f.fixed_ip_address and f.floating_ip_address:
                    want.add((f.floating_ip_address, f.fixed_ip_address))
            self.nat(rid, want)

        for node in self.nodes.values():
            node.check()

    def write_status(self):
        nodes = []
        for n in self.nodes.values():
            nodes.append({
                "id": n.id, "name": n.name, "dir": str(n.dir), "netns": n.netns, "boots": n.boots,
                "nspawn_pid": n.proc.pid if n.proc else None, "leader_pid": n.leader(), "off": n.off,
                "booted_at": n.booted_at,
            })
        status = {"pid": os.getpid(), "heat_port": self.heat_port, "rootfs": str(self.rootfs),
                  "images": str(self.images), "nodes": nodes,
                  "externals": self.externals, "host_address": self.host_address, "routers": {k: v["netns"] for k, v in self.routers.items()},
                  "switches": self.switches, "guards": self.guards}
        tmp = self.state / "status.json.tmp"
        tmp.write_text(json.dumps(status, indent=1) + "\n")
        tmp.replace(self.state / "status.json")

    def serve(self):
        # The external networks first: the host then has its address on the
        # floating range before any stack asks for one.
        for n in self.conn.network.networks(is_router_external=True):
            self.external(n.id)
        self.write_status()
        (self.state / "ready").write_text(f"{os.getpid()}\n")
        log(f"ready: Heat on 127.0.0.1:{self.heat_port} is forwarded into every node; "
            f"metadata goes to 127.0.0.1:{self.metadata_port}")
        errors = 0
        while not self.stopping:
            try:
                self.reconcile()
                errors = 0
            except Exception as e:  # the cloud restarting, say: try again
                errors += 1
                if errors <= 3 or errors % 30 == 0:
                    log(f"reconcile failed ({errors}): {e}")
                    if errors == 1:
                        traceback.print_exc()
            self.write_status()
            for _ in range(10):
                if self.stopping:
                    break
                time.sleep(0.1)

    def teardown(self):
        log("stopping: nodes, routers, switches, host bridges, guards")
        threads = [threading.Thread(target=n.stop) for n in self.nodes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in self.nodes.values():
            n.remove_cgroups()
            root = n.dir / "root"
            if os.path.ismount(root):
                run("umount", str(root), check=False)
            run("ip", "netns", "del", n.netns, check=False)
        for r in self.routers.values():
            r["metadata"].stop()
            run("ip", "netns", "del", r["netns"], check=False)
        for ns in self.switches.values():
            run("ip", "netns", "del", ns, check=False)
        for br in self.externals.values():
            run("ip", "link", "del", br, check=False)
        for cidr in self.guards:
            run("ip", "route", "del", "unreachable", cidr, "metric", GUARD_METRIC, check=False)
        (self.state / "ready").unlink(missing_ok=True)
        log("stopped")


def resolvers():
    out = []
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                out.append(parts[1])
    except OSError:
        pass
    return out


def route_to_resolvers():
    return [run("ip", "-4", "route", "get", r, check=False).splitlines()[:1] for r in resolvers()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--cloud", default="provision-local-admin")
    ap.add_argument("--metadata-port", type=int, default=8775)
    args = ap.parse_args()
    args.metadata_secret = os.environ["PROVISION_METADATA_SECRET"]
    hv = Hypervisor(args)

    def stop(*_):
        hv.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        hv.serve()
    finally:
        hv.teardown()


if __name__ == "__main__":
    sys.exit(main())
