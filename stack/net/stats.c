/* SPDX-License-Identifier: MIT */
/* The stack's live counts, for the load tests and for anyone who suspects a leak: when
 * asked (ts_stack_options.stats_ms; TUNSHIM_STATS, in seconds, in the shim), one log line every
 * that many milliseconds, and one when the loop ends.
 *
 * Why a log line: the stack lives inside someone else's program and has no control
 * channel of its own; the log descriptor already exists, a test reads it from a file,
 * and nothing runs unless asked (no timer, no walk). The counts are taken on the stack
 * thread, which owns lwIP, so they need no lock. The pcb counts walk lwIP's lists when
 * the line is made; pbufs and lwIP's heap bytes cannot be walked, so lwipopts.h turns
 * on MEMP_STATS and MEM_STATS alone (a counter per allocation, 8 bytes per lwIP heap
 * block), which also count what a leak would hide (segments, reassembly buffers). */
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/udp.h"
#include "bridge.h"
#include "log.h"
#include "stack_internal.h"

static unsigned count_tcp(struct tcp_pcb *pcb)
{
	unsigned n = 0;

	for (; pcb; pcb = pcb->next)
		n++;
	return n;
}

static unsigned count_udp(void)
{
	unsigned n = 0;

	for (struct udp_pcb *pcb = udp_pcbs; pcb; pcb = pcb->next)
		n++;
	return n;
}

static unsigned count_bridges(struct ts_stack *st)
{
	unsigned n = 0;

	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		n += !b->dead;
	return n;
}

static unsigned pool_used(memp_t pool)
{
	return lwip_stats.memp[pool] ? lwip_stats.memp[pool]->used : 0;
}

void ts_stats_log(struct ts_stack *st)
{
	ts_info("stack stats: bridges=%u tcp_active=%u tcp_time_wait=%u tcp_listen=%u "
		"tcp_bound=%u udp=%u pbufs=%u tcp_segs=%u lwip_heap=%lu",
		count_bridges(st), count_tcp(tcp_active_pcbs), count_tcp(tcp_tw_pcbs),
		count_tcp(tcp_listen_pcbs.pcbs), count_tcp(tcp_bound_pcbs), count_udp(),
		pool_used(MEMP_PBUF) + pool_used(MEMP_PBUF_POOL), pool_used(MEMP_TCP_SEG),
		(unsigned long)lwip_stats.mem.used);
}

/* Logs when due; returns the nanoseconds until the next line (UINT64_MAX: never). */
uint64_t ts_stats_tick(struct ts_stack *st, uint64_t now)
{
	uint64_t every = (uint64_t)st->opt.stats_ms * 1000000ull;

	if (!every)
		return UINT64_MAX;
	if (now >= st->stats_next) {
		ts_stats_log(st);
		st->stats_next = now + every;
	}
	return st->stats_next - now;
}
