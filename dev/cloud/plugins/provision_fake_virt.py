"""Nova's fake.FakeDriver, with a node UUID that survives restarts.

fake.FakeDriver names its node's UUID with oslo's uuidsentinel, which is a
fresh random UUID in every process, and it never writes the compute_id file.
A restarted nova-compute then refuses to start ("No local node identity
found ...") or would clash with its own old compute node. Here the UUID is
Nova's usual persistent local node identity: read from, or created in,
[DEFAULT] state_path/compute_id on init_host (before Nova checks for it).

Nova loads compute drivers only from inside nova.virt, so `cloud up` copies
this file to nova/virt/provision_fake.py in the venv; nova.conf then says
compute_driver = provision_fake.FakeDriver
"""

from nova.virt import fake
from nova.virt import node


class FakeDriver(fake.FakeDriver):
    def init_host(self, host):
        super().init_host(host)
        self._node_uuid = node.get_local_node_uuid()

    def get_available_resource(self, nodename):
        resources = super().get_available_resource(nodename)
        resources["uuid"] = self._node_uuid
        return resources

    def get_nodenames_by_uuid(self, refresh=False):
        # One node per host.
        return {self._node_uuid: name for name in self.get_available_nodes()}
