/* SPDX-License-Identifier: MIT */
#include "tcp_cc.h"
#include "lwip/priv/tcp_priv.h"

#define CC_RTT_WINDOW_NS (10ull * 1000000000ull) /* min RTT remembered this long */
#define CC_RATE_ROUNDS 10                         /* max delivery rate over these rounds */
#define CC_GAIN 2
/* Below this the ceiling never goes: short paths have tiny products, and lwIP needs
 * some room for its own recovery (a few dozen segments). */
#define CC_FLOOR (64u * 1024u)

static void new_round(struct ts_tcp_cc *cc, const struct tcp_pcb *pcb, uint64_t now)
{
	/* The next byte lwIP sends leaves right after this callback returns (tcp_input
	 * sends what the ACK allows), so its acknowledgement ends a round trip. */
	cc->round_seq = pcb->snd_nxt;
	cc->round_at = now;
	cc->round_acked = 0;
}

static void end_round(struct ts_tcp_cc *cc, uint64_t now)
{
	uint64_t rtt = now - cc->round_at, rate;

	if (rtt == 0)
		return;
	if (!cc->min_rtt || rtt <= cc->min_rtt || now - cc->min_rtt_at > CC_RTT_WINDOW_NS) {
		cc->min_rtt = rtt;
		cc->min_rtt_at = now;
	}
	rate = cc->round_acked * 1000000000ull / rtt;
	/* A windowed maximum in two halves: the best of this window and of the last,
	 * so a rate measured long ago ages out. */
	if (++cc->rounds % CC_RATE_ROUNDS == 0) {
		cc->rate_prev = cc->rate;
		cc->rate = 0;
	}
	if (rate > cc->rate)
		cc->rate = rate;
}

uint64_t ts_tcp_cc_ceiling(const struct ts_tcp_cc *cc, const struct tcp_pcb *pcb)
{
	uint64_t rate = cc->rate > cc->rate_prev ? cc->rate : cc->rate_prev, bdp;

	if (!cc->min_rtt || !rate)
		return 0;
	bdp = rate * cc->min_rtt / 1000000000ull;
	bdp = CC_GAIN * bdp + 4u * pcb->mss;
	return bdp < CC_FLOOR ? CC_FLOOR : bdp;
}

void ts_tcp_cc_on_ack(struct ts_tcp_cc *cc, struct tcp_pcb *pcb, u16_t acked, uint64_t now)
{
	uint64_t ceiling;

	cc->round_acked += acked;
	if (!cc->started) {
		cc->started = 1;
		new_round(cc, pcb, now);
	} else if (TCP_SEQ_GT(pcb->lastack, cc->round_seq)) {
		end_round(cc, now);
		new_round(cc, pcb, now);
	}
	ceiling = ts_tcp_cc_ceiling(cc, pcb);
	if (ceiling && pcb->cwnd > ceiling)
		pcb->cwnd = (tcpwnd_size_t)ceiling;
}
