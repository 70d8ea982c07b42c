// LinuxNet — the Linux side of a lab (see ../shared/DESIGN.md): named network
// namespaces, rtnetlink (links, veth, addresses, routes), per-namespace
// sysctls, ethtool offloads and processes started inside a namespace.
//
// Nothing here moves the caller's thread into a namespace or touches the
// host's own network: handles are bound to a named namespace, and work
// "inside" one runs on a fresh thread that has entered it.
//
// Deploying a lab fast (a few syscalls per node, no process per command):
//
//     for node in nodes {                               // ip netns add
//         try NetworkNamespace.create(node.namespace)
//         handles[node] = try NetworkNamespace.open(node.namespace)
//         netlink[node] = try RTNetlink(namespace: handles[node]!)
//         // Before links exist, so new interfaces inherit "default":
//         try Sysctl.apply([.ipv6Disabled(true), .ipv6Disabled(true, interface: "default"),
//                           .ipv4Forwarding(node.isRouter)], namespace: node.namespace)
//     }
//     let any = netlink[nodes[0]]!                      // both ends are placed by fd,
//     try any.pipelined {                               // so one socket creates all pairs
//         for link in links {
//             try any.linkAddVeth(name: link.a.interface, peer: link.b.interface,
//                                 peerNamespace: handles[link.b.node], namespace: handles[link.a.node],
//                                 mtu: link.mtu, mac: link.a.mac, peerMac: link.b.mac)
//         }
//     }
//     for node in nodes {
//         let nl = netlink[node]!
//         try nl.pipelined {                            // one datagram, one ACK per node
//             try nl.linkSetUp(name: "lo")
//             for interface in node.interfaces {
//                 try nl.linkSetUp(name: interface.name)
//                 try nl.addressAdd(interface.address, interface: interface.name)
//             }
//             for route in node.routes {                // after addresses and up: the
//                 try nl.routeAdd(destination: route.to, via: route.via)  // gateway must be reachable
//             }
//         }
//     }
//
// Teardown is `NetworkNamespace.delete(name)` per node: the kernel removes
// a namespace's interfaces (and their veth peers) when it goes.
