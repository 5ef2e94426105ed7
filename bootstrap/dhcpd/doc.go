// Package dhcpd is the bootstrap server's DHCPv4 server: a listener (Server) that hands each packet to a
// pure handler (Handler), which asks the lease store (Leases) in full mode. It answers each kind of
// network-boot client (package classify) with the one boot file that client can run: undionly.kpxe
// or snponly.efi by TFTP for PXE ROMs, ipxe.efi by HTTP for UEFI HTTP boot, the stage-1 script by HTTP
// for iPXE, and option 43 (bootstrap URL, cluster address) for our own firmware.
//
// # Proxy mode
//
// A school usually has a DHCP server already, and two servers handing out addresses on one network is
// an outage. In proxy mode we hand out none: to a DISCOVER from a network-boot client we answer, on
// port 67, with a ProxyDHCP offer (PXE 2.1): yiaddr 0, option 60 "PXEClient", option 54 and siaddr our
// address, and the boot file. The client takes its address from the school's server and its boot file
// from us. What makes each client accept that, read from the clients' sources:
//
//   - iPXE (src/net/udp/dhcp.c) keeps an offer as ProxyDHCP when its option 60 starts with "PXEClient"
//     and it names a server (option 54, else siaddr). When the offer already holds siaddr and a boot
//     file, iPXE uses it right after the main server's ACK; otherwise it sends a ProxyDHCPREQUEST to
//     port 4011 and takes only an OFFER or ACK coming from port 4011 that holds a boot file.
//   - We send no option 43. A PXE boot menu in it (43.9) makes iPXE and PXE ROMs run boot server
//     discovery instead of loading our file; without it, iPXE loads the file and OVMF treats the offer
//     as a "BINL" one and asks siaddr's port 4011 for the file.
//   - UEFI HTTP boot (OVMF's HttpBootDxe) wants option 60 "HTTPClient" echoed and an http:// boot file.
//
// Hence the second socket on port 4011: a REQUEST (or DISCOVER, INFORM) from a network-boot client there
// gets an ACK with the same boot information, sent back to the sender's address and port. Our firmware
// and other clients are not ours to answer in proxy mode, and are counted as ignored.
//
// # Full mode
//
// On a network of its own (a lab, or a school without DHCP) the server also hands out addresses: a pool
// per subnet (chosen by giaddr when relayed, else by the client's ciaddr, else our own subnet),
// reservations by MAC, DISCOVER/OFFER, REQUEST/ACK/NAK in all of RFC 2131's states (selecting,
// init-reboot, renewing, rebinding), RELEASE, DECLINE (the address is quarantined) and INFORM.
// Boot information is added per class as in proxy mode, but without option 60 "PXEClient" (see fill).
// An offered address is held for its client for a minute, so concurrent DISCOVERs get different ones.
//
// # Leases and group commit
//
// A restart must never hand one address to two machines, so an ACK is sent only once its lease is on
// disk: appended to a journal and fsynced. An fsync takes milliseconds, and 1,000 terminals powered on
// together would wait for 1,000 of them in a row. Instead, the changes that arrive while one write is in
// flight are gathered and written with the next single write and fsync (group commit): the number of
// fsyncs follows the disk's speed, not the number of clients, and every ACK still waits for its own
// record to be durable. Requests are handled by a pool of workers (Config.Workers) so that those waiting
// for the disk do not stop the others from being read and batched. The journal is compacted (rewritten
// and atomically renamed) when opened and when it has grown to several times the live state; a torn
// record at its end, left by a power cut during a write that was never acknowledged, is ignored.
package dhcpd
