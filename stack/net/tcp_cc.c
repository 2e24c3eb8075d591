/* SPDX-License-Identifier: MIT */
#include "tcp_cc.h"
#include "lwip/priv/tcp_priv.h"

#define CC_RTT_WINDOW_NS (10ull * 1000000000ull) /* min RTT remembered this long */
#define CC_PROBE_NS (200ull * 1000000ull)        /* a round-trip probe lasts at least this */
#define CC_PROBE_ROUNDS 2                        /* and this many rounds */
#define CC_RATE_ROUNDS 10                         /* max delivery rate over these rounds */
#define CC_GAIN 2
/* Below this the ceiling never goes: short paths have tiny products, and lwIP needs
 * some room for its own recovery (a few dozen segments). */
#define CC_FLOOR (64u * 1024u)
#define RTO_MIN_TICKS (200 / TCP_SLOW_INTERVAL)
#define RTT_MAX_TICKS 0x0fff /* sa holds eight times it in an s16_t */

static void new_round(struct ts_tcp_cc *cc, const struct tcp_pcb *pcb, u32_t delivered,
		      uint64_t now)
{
	/* The next byte lwIP sends leaves right after this callback returns (tcp_input
	 * sends what the ACK allows), so its acknowledgement ends a round trip. */
	cc->round_seq = pcb->snd_nxt;
	cc->round_at = now;
	cc->round_delivered = delivered;
}

static void probe_rtt(struct ts_tcp_cc *cc, uint64_t rtt, uint64_t now)
{
	if (!cc->probing) {
		if (now - cc->min_rtt_at <= CC_RTT_WINDOW_NS)
			return;
		cc->probing = true;
		cc->probe_at = now;
		cc->probe_min = UINT64_MAX;
		cc->probe_rounds = 0;
		return; /* this round was sent with the full window */
	}
	if (rtt < cc->probe_min)
		cc->probe_min = rtt;
	if (++cc->probe_rounds >= CC_PROBE_ROUNDS && now - cc->probe_at >= CC_PROBE_NS) {
		cc->probing = false;
		cc->min_rtt = cc->probe_min;
		cc->min_rtt_at = now;
	}
}

static void end_round(struct ts_tcp_cc *cc, u32_t delivered, uint64_t now)
{
	uint64_t rtt = now - cc->round_at, rate;

	if (rtt == 0)
		return;
	if (!cc->min_rtt || rtt <= cc->min_rtt) {
		cc->min_rtt = rtt;
		cc->min_rtt_at = now;
		cc->probing = false;
	} else {
		probe_rtt(cc, rtt, now);
	}
	rate = (uint64_t)(delivered - cc->round_delivered) * 1000000000ull / rtt;
	/* A windowed maximum in two halves: the best of this window and of the last,
	 * so a rate measured long ago ages out. */
	if (++cc->rounds % CC_RATE_ROUNDS == 0) {
		cc->rate_prev = cc->rate;
		cc->rate = 0;
	}
	if (rate > cc->rate)
		cc->rate = rate;
}

static u32_t bdp_of(const struct ts_tcp_cc *cc)
{
	uint64_t rate = cc->rate > cc->rate_prev ? cc->rate : cc->rate_prev, bdp;

	if (!cc->min_rtt || !rate)
		return 0;
	bdp = rate * cc->min_rtt / 1000000000ull;
	return bdp > UINT32_MAX / 4 ? UINT32_MAX / 4 : (u32_t)bdp;
}

u32_t ts_tcp_cc_loss_floor(const struct ts_tcp_cc *cc)
{
	u32_t bdp = bdp_of(cc);

	return bdp + bdp / 4;
}

uint64_t ts_tcp_cc_ceiling(const struct ts_tcp_cc *cc, const struct tcp_pcb *pcb)
{
	uint64_t bdp = bdp_of(cc);

	if (!bdp)
		return 0;
	bdp = CC_GAIN * bdp + 4u * pcb->mss;
	return bdp < CC_FLOOR ? CC_FLOOR : bdp;
}

static void set_window(struct ts_tcp_cc *cc, struct tcp_pcb *pcb)
{
	uint64_t ceiling = ts_tcp_cc_ceiling(cc, pcb);

	if (!ceiling)
		return; /* nothing measured: lwIP's slow start as it is */
	if (pcb->ssthresh < ceiling)
		pcb->ssthresh = (tcpwnd_size_t)ceiling;
	if (cc->probing) {
		uint64_t half = bdp_of(cc) / 2;

		ceiling = half > 4u * pcb->mss ? half : 4u * pcb->mss;
	}
	if (pcb->cwnd > ceiling)
		pcb->cwnd = (tcpwnd_size_t)ceiling;
}

void ts_tcp_cc_on_ack(struct ts_tcp_cc *cc, struct tcp_pcb *pcb, u32_t held, bool recovering,
		      uint64_t now)
{
	/* Delivered so far, counting what the peer holds above a hole: a hole filled
	 * later then adds only its own bytes to the round it is filled in. */
	u32_t delivered = pcb->lastack + held;

	if (!cc->started) {
		cc->started = true;
		new_round(cc, pcb, delivered, now);
	} else if (TCP_SEQ_GT(pcb->lastack, cc->round_seq)) {
		end_round(cc, delivered, now);
		new_round(cc, pcb, delivered, now);
	}
	if (!recovering)
		set_window(cc, pcb);
}

void ts_tcp_rto_init(struct tcp_pcb *pcb, uint64_t rtt_ns)
{
	uint64_t tick = TCP_SLOW_INTERVAL * 1000000ull, t = (rtt_ns + tick - 1) / tick;
	s16_t r = (s16_t)(t > RTT_MAX_TICKS ? RTT_MAX_TICKS : t);

	pcb->sa = (s16_t)(r << 3);
	pcb->sv = (s16_t)(2 * r > RTO_MIN_TICKS - r ? 2 * r : RTO_MIN_TICKS - r);
	pcb->rto = (s16_t)(r + pcb->sv);
}

void ts_tcp_rto_floor(struct tcp_pcb *pcb)
{
	s16_t srtt = (s16_t)(pcb->sa >> 3);

	if (srtt + pcb->sv < RTO_MIN_TICKS)
		pcb->sv = (s16_t)(RTO_MIN_TICKS - srtt);
	if (pcb->rto < RTO_MIN_TICKS)
		pcb->rto = RTO_MIN_TICKS;
}
