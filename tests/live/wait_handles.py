"""Print every OS::Heat::WaitConditionHandle of a stack, nested stacks
included, as `<resource path>\t<curl_cli>`: what each node would run to
signal Heat. The live test feeds these to the node's own signal script.

Usage: wait_handles.py STACK   (OS_CLOUD / OS_CLIENT_CONFIG_FILE as usual)
"""
import sys

import openstack


def main(stack_name):
    conn = openstack.connect()
    stack = conn.orchestration.find_stack(stack_name, ignore_missing=False)
    seen = 0
    # The SDK's resources() drops nested_depth, so ask Heat directly.
    listing = conn.orchestration.get(f"/stacks/{stack.name}/{stack.id}/resources?nested_depth=5").json()
    for res in listing["resources"]:
        if res["resource_type"] != "OS::Heat::WaitConditionHandle":
            continue
        # The resource's own stack (nested for a worker) is in its links.
        owner = next(l["href"] for l in res["links"] if l["rel"] == "stack")
        path = owner.split("/stacks/", 1)[1]
        got = conn.orchestration.get(f"/stacks/{path}/resources/{res['resource_name']}").json()
        curl = got["resource"]["attributes"].get("curl_cli")
        if curl:
            print(f"{path}/{res['resource_name']}\t{curl}")
            seen += 1
    if seen == 0:
        sys.exit("no wait condition handle has a curl_cli yet")


if __name__ == "__main__":
    main(sys.argv[1])
