"""The DNS agent's server: authoritative for a test zone (twisted.names).

    python -m agents.tools.dnsserver ADDRESS PORT ZONE RECORDS.json

RECORDS.json maps names inside the zone (without it) to IPv4 addresses,
e.g. {"client1": "198.18.1.2", "www": "198.18.10.2"}.  UDP and TCP; every
query is logged as a JSON line the agent counts.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from twisted.names import authority, dns, server

from agents.tools.common import server_main


class ZoneAuthority(authority.FileAuthority):
    """A zone given as a mapping instead of a zone file."""

    def __init__(self, zone: str, records: dict[str, str], server_address: str) -> None:
        self._zone = zone.rstrip(".").lower()
        self._entries = records
        self._server_address = server_address
        super().__init__(self._zone)

    def loadFile(self, filename: str) -> None:
        zone = self._zone
        soa = dns.Record_SOA(mname=f"ns.{zone}", rname=f"seer.{zone}", serial=1, refresh=60,
                             retry=60, expire=60, minimum=60, ttl=60)
        self.soa = (zone.encode(), soa)
        self.records = {
            zone.encode(): [soa, dns.Record_NS(f"ns.{zone}", ttl=60)],
            f"ns.{zone}".encode(): [dns.Record_A(self._server_address, ttl=60)],
        }
        for name, address in self._entries.items():
            self.records[f"{name}.{zone}".lower().encode()] = [dns.Record_A(address, ttl=60)]


class CountingFactory(server.DNSServerFactory):
    def messageReceived(self, message, proto, address=None):
        for query in message.queries:
            print(json.dumps({"query": query.name.name.decode(errors="replace"),
                              "client": address[0] if address else None}), flush=True)
        return super().messageReceived(message, proto, address)


def start(reactor: Any, address: str, port: int, zone: str, records_file: str) -> dict[str, Any]:
    with open(records_file) as f:
        records = json.load(f)
    factory = CountingFactory(authorities=[ZoneAuthority(zone, records, address)])
    reactor.listenUDP(port, dns.DNSDatagramProtocol(controller=factory), interface=address)
    reactor.listenTCP(port, factory, interface=address)
    return {"zone": zone, "names": len(records)}


def main(argv: list[str]) -> int:
    return server_main(argv, __doc__, ("zone", "records"), start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
