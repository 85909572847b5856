"""Create the local cloud's Keystone entries and tenant resources, if missing.

Usage: register.py keystone   (service users, catalog, heat domain, demo user)
       register.py tenant     (flavors, image, networks, router, keypairs)

Everything goes through one openstacksdk process per phase: each `openstack`
CLI call costs ~5 s of start-up, so looping over the CLI is far slower.
Settings come from the environment (exported by dev/cloud/cloud).
Every step looks first and creates only what is missing, so a re-run is
cheap and safe.
"""

import os
import sys
import time

import openstack

ENV = os.environ
KEYSTONE_URL = ENV["KEYSTONE_URL"]
REGION = "RegionOne"


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} register: {msg}", flush=True)


def connect(username, password, project):
    return openstack.connect(
        auth_url=f"{KEYSTONE_URL}/v3",
        username=username,
        password=password,
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        interface="public",
        identity_api_version="3",
        # Ignore any clouds.yaml / OS_* of the caller: we say it all here.
        load_yaml_config=False,
        load_envvars=False,
    )


def admin_conn():
    return connect("admin", ENV["ADMIN_PASSWORD"], "admin")


# --- keystone ----------------------------------------------------------------


def ensure_role(idn, name):
    role = idn.find_role(name)
    if role is None:
        log(f"role {name}")
        role = idn.create_role(name=name)
    return role


def ensure_project(idn, name, domain_id, description=""):
    project = idn.find_project(name, domain_id=domain_id)
    if project is None:
        log(f"project {name}")
        project = idn.create_project(
            name=name, domain_id=domain_id, description=description
        )
    return project


def ensure_user(idn, name, password, domain_id, project=None):
    user = idn.find_user(name, domain_id=domain_id)
    if user is None:
        log(f"user {name}")
        kwargs = {"default_project_id": project.id} if project else {}
        user = idn.create_user(
            name=name, password=password, domain_id=domain_id, **kwargs
        )
    return user


def ensure_endpoints(idn, name, service_type, url):
    service = next(iter(idn.services(type=service_type)), None)
    if service is None:
        log(f"service {name} ({service_type})")
        service = idn.create_service(name=name, type=service_type)
    existing = {e.interface: e for e in idn.endpoints(service_id=service.id)}
    for interface in ("public", "internal", "admin"):
        endpoint = existing.get(interface)
        if endpoint is None:
            log(f"endpoint {service_type} {interface} {url}")
            idn.create_endpoint(
                service_id=service.id,
                interface=interface,
                url=url,
                region_id=REGION,
            )
        elif endpoint.url != url:
            # A port was changed through PROVISION_CLOUD_*_PORT.
            log(f"endpoint {service_type} {interface} {endpoint.url} -> {url}")
            idn.update_endpoint(endpoint, url=url)


def phase_keystone():
    conn = admin_conn()
    idn = conn.identity
    default = idn.find_domain("default", ignore_missing=False)

    roles = {
        name: ensure_role(idn, name)
        for name in (
            "admin",
            "member",
            "reader",
            "service",
            "heat_stack_owner",
            "heat_stack_user",
        )
    }
    service_project = ensure_project(idn, "service", default.id, "service users")
    admin_project = idn.find_project("admin", domain_id=default.id, ignore_missing=False)
    admin_user = idn.find_user("admin", domain_id=default.id, ignore_missing=False)
    # The admin cloud entry may create stacks too.
    idn.assign_project_role_to_user(admin_project, admin_user, roles["heat_stack_owner"])

    # keystonemiddleware 13 wants the `service` role on service tokens (Nova
    # sends one to Neutron); `admin` lets the services act across projects.
    for name in ("heat", "nova", "neutron", "glance", "placement"):
        user = ensure_user(idn, name, ENV["SERVICE_PASSWORD"], default.id)
        for role in ("admin", "service"):
            idn.assign_project_role_to_user(service_project, user, roles[role])

    ports = {k: ENV[f"{k.upper()}_PORT"] for k in ("heat", "nova", "neutron", "glance", "placement")}
    ensure_endpoints(idn, "heat", "orchestration", f"http://127.0.0.1:{ports['heat']}/v1/%(tenant_id)s")
    ensure_endpoints(idn, "placement", "placement", f"http://127.0.0.1:{ports['placement']}")
    ensure_endpoints(idn, "glance", "image", f"http://127.0.0.1:{ports['glance']}")
    ensure_endpoints(idn, "nova", "compute", f"http://127.0.0.1:{ports['nova']}/v2.1")
    ensure_endpoints(idn, "neutron", "network", f"http://127.0.0.1:{ports['neutron']}")

    # Heat puts the users behind wait-condition handles in their own domain,
    # managed by heat_domain_admin.
    heat_domain = idn.find_domain("heat")
    if heat_domain is None:
        log("domain heat")
        heat_domain = idn.create_domain(name="heat", description="Heat stack users")
    domain_admin = ensure_user(idn, "heat_domain_admin", ENV["SERVICE_PASSWORD"], heat_domain.id)
    idn.assign_domain_role_to_user(heat_domain, domain_admin, roles["admin"])

    # The user the project's tests create stacks as.
    demo = ensure_project(idn, "demo", default.id, "provision tests")
    demo_user = ensure_user(idn, "demo", ENV["DEMO_PASSWORD"], default.id, demo)
    for role in ("member", "reader", "heat_stack_owner"):
        idn.assign_project_role_to_user(demo, demo_user, roles[role])
    log("keystone done")


# --- tenant resources --------------------------------------------------------


def ensure_flavor(compute, name, vcpus, ram, disk):
    if compute.find_flavor(name) is None:
        log(f"flavor {name}")
        compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)


def ensure_keypair(conn, who, name, public_key):
    keypair = conn.compute.find_keypair(name)
    if keypair is not None and keypair.public_key.strip() != public_key.strip():
        # The key file was regenerated (e.g. after `down --purge`).
        log(f"keypair {name} ({who}) has another key: replacing it")
        conn.compute.delete_keypair(keypair)
        keypair = None
    if keypair is None:
        log(f"keypair {name} ({who})")
        conn.compute.create_keypair(name=name, public_key=public_key)


def ensure_image(image, name):
    if image.find_image(name) is None:
        # The fake hypervisor never reads it: 1 KiB of zeros is enough.
        log(f"image {name}")
        image.create_image(
            name,
            data=b"\0" * 1024,
            disk_format="raw",
            container_format="bare",
            visibility="public",
            wait=True,
            timeout=120,
        )


def phase_tenant():
    admin = admin_conn()
    demo = connect("demo", ENV["DEMO_PASSWORD"], "demo")

    ensure_flavor(admin.compute, "m1.tiny", 1, 512, 1)
    ensure_flavor(admin.compute, "m1.small", 1, 2048, 20)

    ensure_image(admin.image, "flatcar")
    # Newer than flatcar, so they fill Glance's first page (see
    # glance-api.conf): flatcar is found only by asking for it.
    for n in range(1, 4):
        ensure_image(admin.image, f"filler-image-{n}")

    net = admin.network
    public = net.find_network("public")
    if public is None:
        log("network public (external, flat)")
        public = net.create_network(
            name="public",
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="public",
        )
    if net.find_subnet("public-subnet", network_id=public.id) is None:
        log("subnet public-subnet 172.24.4.0/24")
        net.create_subnet(
            name="public-subnet",
            network_id=public.id,
            ip_version=4,
            cidr="172.24.4.0/24",
            gateway_ip="172.24.4.1",
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}],
            is_dhcp_enabled=False,
        )

    dnet = demo.network
    demo_project_id = demo.current_project_id
    private = dnet.find_network("private", project_id=demo_project_id)
    if private is None:
        log("network private (vxlan)")
        private = dnet.create_network(name="private")
    subnet = dnet.find_subnet("private-subnet", network_id=private.id)
    if subnet is None:
        log("subnet private-subnet 10.0.0.0/24")
        subnet = dnet.create_subnet(
            name="private-subnet",
            network_id=private.id,
            ip_version=4,
            cidr="10.0.0.0/24",
            gateway_ip="10.0.0.1",
        )

    router = dnet.find_router("router1", project_id=demo_project_id)
    if router is None:
        log("router router1 (gateway public)")
        router = dnet.create_router(
            name="router1", external_gateway_info={"network_id": public.id}
        )
    attached = any(
        ip.get("subnet_id") == subnet.id
        for port in dnet.ports(device_id=router.id)
        for ip in port.fixed_ips
    )
    if not attached:
        log("router1 interface on private-subnet")
        dnet.add_interface_to_router(router, subnet_id=subnet.id)

    with open(ENV["SSH_PUBLIC_KEY"]) as f:
        public_key = f.read()
    # Keypairs belong to a user, not a project: give both users one.
    ensure_keypair(demo, "demo", "provision-key", public_key)
    ensure_keypair(admin, "admin", "provision-key", public_key)
    log("tenant done")


if __name__ == "__main__":
    phases = {"keystone": phase_keystone, "tenant": phase_tenant}
    if len(sys.argv) != 2 or sys.argv[1] not in phases:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(phases)}}}")
    phases[sys.argv[1]]()
