/* SPDX-License-Identifier: MIT */
/* lwIP overrides for tunshim. Only what differs from opt.h, each with its reason. */
#ifndef TS_LWIPOPTS_H
#define TS_LWIPOPTS_H

/* One stack thread owns lwIP: no OS layer, no locks. */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_COMPAT_SOCKETS 0
#define LWIP_TIMERS 1

/* Memory comes from malloc: connections and buffers are bounded by flow control,
 * not by static pools sized for microcontrollers. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8
#define MEM_SIZE (16 * 1024 * 1024)
#define PBUF_POOL_SIZE 64
/* With MEMP_MEM_MALLOC these counts limit nothing (bridge_tcp.c bounds TIME_WAIT). */
#define MEMP_NUM_TCP_PCB 4096
#define MEMP_NUM_TCP_PCB_LISTEN 256
#define MEMP_NUM_UDP_PCB 1024
#define MEMP_NUM_TCP_SEG 65535
#define MEMP_NUM_PBUF 4096
#define MEMP_NUM_SYS_TIMEOUT 32

#define LWIP_IPV4 1
#define LWIP_IPV6 1
/* The tunnel is L3: no link layer, no neighbour discovery, no autoconfiguration. */
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_ND6_QUEUEING 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
/* Raw pcbs carry the applications' ICMP sockets (bridge_icmp.c). */
#define LWIP_RAW 1
/* Reassemble fragments the peer's side may produce, and fragment what is larger
 * than the tunnel MTU as the kernel does for a socket that has not asked for path MTU
 * discovery (ping -s 2000, a large UDP datagram); TCP segments fit the MSS anyway.
 * Sockets that forbid fragmenting (IP_MTU_DISCOVER) get EMSGSIZE in the shim. */
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define LWIP_IPV6_REASS 1
/* 64-bit pointers do not fit in the fragment header: reassembly copies it. */
#define IPV6_FRAG_COPYHEADER 1
#define LWIP_IPV6_FRAG 1
#define IP_REASS_MAX_PBUFS 128

#define LWIP_TCP 1
#define LWIP_UDP 1
#define LWIP_ICMP 1
#define LWIP_ICMP6 1

/* TCP sized for WAN bandwidth-delay products: one connection keeps several MiB in
 * flight (4 MiB at 100 ms is 320 Mbit/s). Window scaling makes that expressible;
 * the scale factor 7 allows 8 MiB windows. */
#define TCP_MSS 1380 /* MTU 1420 - 40; IPv6 and smaller MTUs lower it per netif */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 7
#define TCP_WND (4 * 1024 * 1024)
#define TCP_SND_BUF (4 * 1024 * 1024)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 2)
/* init.c's sanity check wants the low-water mark below the 16-bit limit. */
#define TCP_SNDLOWAT (0xFFFF - 4 * TCP_MSS - 1)
#define TCP_WND_UPDATE_THRESHOLD (TCP_WND / 8)
#define TCP_OOSEQ_MAX_BYTES (4 * 1024 * 1024)
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_SACK_OUT 1
#define LWIP_TCP_MAX_SACK_NUM 8
#define TCP_LISTEN_BACKLOG 1
/* A server that closes its listener and listens again (iperf3 -s does, per test)
 * must get its port back while the previous connections linger (SOF_REUSEADDR). */
#define SO_REUSE 1
#define LWIP_TCP_TIMESTAMPS 1
#define TCP_CALCULATE_EFF_SEND_MSS 1
/* lwIP measures RTTs and retransmission timeouts in slow-timer ticks (twice this),
 * and recovers from more than one loss per window only by timeout (no SACK
 * recovery). The default 250 ms tick gives a 1.5 s minimum RTO: a burst that
 * overflowed the peer's UDP receive buffer stalled an upload for seconds (8 MB/s
 * against wireguard-go on loopback). With 10 ms ticks the RTO follows the measured
 * RTT closely (20 MB upload: 0.2 s); the cost is a timer wake-up every 10 ms while
 * connections are open, and a shorter minimum RTO than Linux's 200 ms. */
#define TCP_TMR_INTERVAL 10
#define LWIP_TCP_KEEPALIVE 1
/* How long a closed connection stays in TIME_WAIT is 2 * TCP_MSL (lwIP's 60 s MSL).
 * A variable, so that TUNSHIM_TIMER_SCALE scales it with the other protocol timers:
 * a test that closes thousands of connections sees them leave TIME_WAIT in seconds
 * (sys_arch.c; set when the stack starts). */
extern unsigned long ts_lwip_tcp_msl;
#define TCP_MSL ts_lwip_tcp_msl
#define TCP_OVERSIZE TCP_MSS
#define LWIP_NETIF_TX_SINGLE_PBUF 0
#define LWIP_CHECKSUM_ON_COPY 1
/* Every TCP segment to a connection of ours passes here before lwIP takes it: the
 * SACK blocks of its ACK feed the recovery lwIP lacks (stack/net/tcp_sack.h). */
struct tcp_pcb;
struct tcp_hdr;
struct pbuf;
signed char ts_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, unsigned short optlen,
			    unsigned short opt1len, unsigned char *opt2, struct pbuf *p);
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
	ts_tcp_inpacket(pcb, hdr, optlen, opt1len, opt2, p)
/* Our checksum, eight bytes at a time (chksum.c). */
unsigned short ts_chksum(const void *data, int len);
#define LWIP_CHKSUM ts_chksum

/* Every packet that reaches lwIP was decrypted and authenticated by the WireGuard
 * layer: a corrupted one never gets here, and a peer that sends wrong checksums on
 * purpose is one we trust with the data anyway. Like the kernel's WireGuard, which
 * marks decrypted packets CHECKSUM_UNNECESSARY, we do not verify IP, UDP and TCP
 * checksums again (4 % of a receiving stack's time). We still generate them: the
 * peer's stack checks. ICMP keeps its check: rare, and its sockets hand packets on. */
#define CHECKSUM_CHECK_IP 0
#define CHECKSUM_CHECK_UDP 0
#define CHECKSUM_CHECK_TCP 0

#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_SINGLE_NETIF 1
/* Only the allocation counters, for the stack's live counts (stack/net/stats.c):
 * pbufs and lwIP's heap bytes in use. Each costs a counter update per allocation and
 * MEM_STATS 8 bytes per lwIP heap block; the protocol counters stay off. */
#define LWIP_STATS 1
#define MEM_STATS 1
#define MEMP_STATS 1
#define LINK_STATS 0
#define ETHARP_STATS 0
#define IP_STATS 0
#define IPFRAG_STATS 0
#define ICMP_STATS 0
#define IGMP_STATS 0
#define UDP_STATS 0
#define TCP_STATS 0
#define SYS_STATS 0
#define IP6_STATS 0
#define ICMP6_STATS 0
#define IP6_FRAG_STATS 0
#define MLD6_STATS 0
#define ND6_STATS 0
#define LWIP_DEBUG 0

#endif
