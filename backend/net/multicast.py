"""Thin multicast transports: the controller's sender and a node's receiver.

Both always name their interface explicitly and the sender uses TTL 1, so
SEER's control datagrams never leave the control network and never go out of
whatever interface the kernel would pick by default.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from collections.abc import Callable

from twisted.internet.interfaces import IReactorMulticast
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

log = Logger()

_SIOCGIFADDR = 0x8915
RECEIVE_BUFFER = 4 * 1024 * 1024


class MulticastConfigError(ValueError):
    """A group or interface that cannot be used."""


# The standard ipaddress module here, not netaddr: cryptography has loaded it
# already, and a daemon whose agents never parse an address is spared
# netaddr's ~0.7 MB (docs/PERFORMANCE.md, footprint).
def check_group(group: str) -> str:
    try:
        address = ipaddress.IPv4Address(group)
    except ValueError:
        raise MulticastConfigError(f"multicast group {group!r} is not an IPv4 address") from None
    if not address.is_multicast:
        raise MulticastConfigError(
            f"{group} is not an IPv4 multicast address; use one in 239.0.0.0/8"
        )
    return str(address)


def resolve_interface(interface: str) -> str:
    """The IPv4 address of ``interface`` (an address, or a name like eth1)."""
    if not interface:
        raise MulticastConfigError(
            "no multicast interface given; SEER never uses the default interface"
        )
    try:
        return str(ipaddress.IPv4Address(interface))
    except ValueError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(
                s.fileno(), _SIOCGIFADDR, struct.pack("256s", interface[:15].encode())
            )
        except OSError as e:
            raise MulticastConfigError(
                f"interface {interface!r} has no IPv4 address here ({e.strerror}); "
                "give the control interface's name or address"
            ) from None
    return socket.inet_ntoa(packed[20:24])


def grow_receive_buffer(sock: socket.socket) -> None:
    """A receive buffer of RECEIVE_BUFFER bytes: a burst waits in the kernel
    instead of being dropped (a burst of commands at a daemon; at the
    controller, every node's report of one command at once)."""
    # SO_RCVBUFFORCE (root) goes past net.core.rmem_max for this socket only.
    force = getattr(socket, "SO_RCVBUFFORCE", 33)
    for option in (force, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            return
        except OSError:
            continue


class MulticastSender(DatagramProtocol):
    """Sends datagrams to the group on one interface with TTL 1."""

    noisy = False

    def __init__(self, group: str, port: int, interface_address: str) -> None:
        self.group = check_group(group)
        self.port = port
        self.interface_address = interface_address
        self.datagrams = 0
        self.bytes = 0

    def startProtocol(self) -> None:
        self.transport.setTTL(1)
        self.transport.setLoopbackMode(True)
        self.transport.setOutgoingInterface(self.interface_address)

    def send(self, data: bytes) -> None:
        self.datagrams += 1
        self.bytes += len(data)
        self.transport.write(data, (self.group, self.port))


def listen_sender(reactor: IReactorMulticast, sender: MulticastSender):
    """Bind the sender to its interface address (ephemeral port)."""
    return reactor.listenMulticast(0, sender, interface=sender.interface_address)


class MulticastReceiver(DatagramProtocol):
    """Joins the group on one interface and passes every datagram on."""

    noisy = False

    def __init__(
        self, group: str, interface_address: str, on_datagram: Callable[[bytes], None]
    ) -> None:
        self.group = check_group(group)
        self.interface_address = interface_address
        self.on_datagram = on_datagram

    def startProtocol(self) -> None:
        grow_receive_buffer(self.transport.socket)
        d = self.transport.joinGroup(self.group, self.interface_address)
        d.addErrback(
            lambda f: log.error(
                "cannot join {group} on {interface}: {error}",
                group=self.group, interface=self.interface_address,
                error=f.getErrorMessage(),
            )
        )

    def datagramReceived(self, data: bytes, addr) -> None:
        self.on_datagram(data)


def listen_receiver(reactor: IReactorMulticast, port: int, receiver: MulticastReceiver):
    """Bind to the group address itself, so only that group's datagrams arrive."""
    return reactor.listenMulticast(
        port, receiver, interface=receiver.group, listenMultiple=True, maxPacketSize=65535
    )
