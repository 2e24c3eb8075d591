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
/* The least round trip the product is taken over. Between two stacks on one machine
 * the smallest round trip (60-70 us) is one caught when both loops were idle; under
 * load a round trip takes several loop passes and thread wake-ups on each side, and a
 * window of the idle product left both processes waiting on each other (iperf3 shim to
 * shim, 4 runs each: 266-404 MB/s without, 346-414 with this floor). Paths through a
 * network have round trips above it, and do not notice it. */
#define CC_RTT_FLOOR_NS 250000ull
#define CC_LOSS_MEMORY_NS (10ull * 1000000000ull)
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
	uint64_t rtt = now - cc->round_at, rate, span;

	if (rtt == 0)
		return;
	if (!cc->min_rtt || rtt <= cc->min_rtt) {
		cc->min_rtt = rtt;
		cc->min_rtt_at = now;
		cc->probing = false;
	} else {
		probe_rtt(cc, rtt, now);
	}
	/* Over the longer of this round and the last: what this round's ACKs deliver was
	 * mostly sent during the last, and ACKs that come bunched (batches of both
	 * stacks' loops, the peer's receive batching) would otherwise make a short round
	 * read as a fast one (BBR takes the longer of the send and ACK intervals). */
	span = rtt > cc->last_round ? rtt : cc->last_round;
	cc->last_round = rtt;
	rate = (uint64_t)(delivered - cc->round_delivered) * 1000000000ull / span;
	/* A windowed maximum in two halves: the best of this window and of the last,
	 * so a rate measured long ago ages out. */
	if (++cc->rounds % CC_RATE_ROUNDS == 0) {
		cc->rate_prev = cc->rate;
		cc->rate = 0;
		cc->extra_prev = cc->extra;
		cc->extra = 0;
	}
	if (rate > cc->rate)
		cc->rate = rate;
}

/* The windowed maxima: the best of this window and of the last. */
static uint64_t max_rate(const struct ts_tcp_cc *cc)
{
	return cc->rate > cc->rate_prev ? cc->rate : cc->rate_prev;
}

static u32_t max_extra(const struct ts_tcp_cc *cc)
{
	return cc->extra > cc->extra_prev ? cc->extra : cc->extra_prev;
}

static u32_t bdp_of(const struct ts_tcp_cc *cc)
{
	uint64_t rate = max_rate(cc), bdp;

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

/* What a path without loss is allowed beyond twice the product: the ACK bursts, and the
 * product over at least CC_RTT_FLOOR_NS. Once a loss shows that the receiver or the
 * path cannot take the bursts (wireguard-go's 208 KB receive buffer took an upload from
 * 85 to 10-14 MB/s), it is withdrawn for CC_LOSS_MEMORY_NS. */
static uint64_t allowance(const struct ts_tcp_cc *cc)
{
	uint64_t a;

	if (cc->lossy)
		return 0;
	a = max_extra(cc);
	if (cc->min_rtt < CC_RTT_FLOOR_NS)
		a += CC_GAIN * max_rate(cc) * (CC_RTT_FLOOR_NS - cc->min_rtt) / 1000000000ull;
	return a;
}

/* The ceiling now, in bytes, or 0 while nothing is measured. */
static uint64_t ceiling_of(const struct ts_tcp_cc *cc, const struct tcp_pcb *pcb)
{
	uint64_t bdp = bdp_of(cc);

	if (!bdp)
		return 0;
	bdp = CC_GAIN * bdp + allowance(cc) + 4u * pcb->mss;
	return bdp < CC_FLOOR ? CC_FLOOR : bdp;
}

static void set_window(struct ts_tcp_cc *cc, struct tcp_pcb *pcb)
{
	uint64_t ceiling = ceiling_of(cc, pcb);

	if (!ceiling)
		return; /* nothing measured: lwIP's slow start as it is */
	if (pcb->ssthresh < ceiling)
		pcb->ssthresh = (tcpwnd_size_t)ceiling;
	cc->ssthresh_set = pcb->ssthresh;
	if (cc->probing) {
		uint64_t half = bdp_of(cc) / 2;

		ceiling = half > 4u * pcb->mss ? half : 4u * pcb->mss;
	}
	if (pcb->cwnd > ceiling)
		pcb->cwnd = (tcpwnd_size_t)ceiling;
}

/* ACK aggregation: an epoch of ACKs lasts while they deliver more than the measured rate
 * would in the time since it began; what it delivers beyond that is extra (at most one
 * BDP's worth of 100 ms, as BBR bounds it). */
static void aggregation(struct ts_tcp_cc *cc, u32_t delivered, uint64_t now)
{
	uint64_t rate = max_rate(cc);
	uint64_t expected = rate * (now - cc->agg_at) / 1000000000ull, got, cap = rate / 10;

	got = delivered - cc->agg_delivered;
	if (got <= expected) {
		cc->agg_at = now;
		cc->agg_delivered = delivered;
		return;
	}
	got -= expected;
	if (got > cap)
		got = cap;
	if (got > cc->extra)
		cc->extra = (u32_t)got;
}

void ts_tcp_cc_on_ack(struct ts_tcp_cc *cc, struct tcp_pcb *pcb, u32_t held, bool recovering,
		      uint64_t now, uint64_t pass)
{
	/* Delivered so far, counting what the peer holds above a hole: a hole filled
	 * later then adds only its own bytes to the round it is filled in. */
	u32_t delivered = pcb->lastack + held;

	/* Never backwards: an ACK without SACK blocks (reordered, or a window update) says
	 * nothing of what the peer holds, and a count that fell would read as gigabytes
	 * delivered in the next difference. */
	if (cc->started && TCP_SEQ_LT(delivered, cc->delivered))
		delivered = cc->delivered;
	cc->delivered = delivered;

	if (!cc->started) {
		cc->started = true;
		cc->agg_at = now;
		cc->agg_delivered = delivered;
		new_round(cc, pcb, delivered, now);
	} else if (TCP_SEQ_GT(pcb->lastack, cc->round_seq)) {
		end_round(cc, delivered, now);
		new_round(cc, pcb, delivered, now);
		cc->round_pass = pass;
	} else if (pass == cc->round_pass) {
		/* ACKs taken in the pass that began the round arrived with the one that
		 * ended the last: counted in this round they would make its rate that of
		 * a burst (measured 2-5 times what was delivered). */
		cc->round_delivered = delivered;
	}
	aggregation(cc, delivered, now);
	/* lwIP lowers ssthresh on a timeout or its own fast retransmit; tcp_sack.c's
	 * recovery says so itself. */
	if (recovering || pcb->nrtx || (pcb->flags & TF_RTO) || pcb->ssthresh < cc->ssthresh_set)
		cc->loss_at = now;
	cc->lossy = cc->loss_at && now - cc->loss_at < CC_LOSS_MEMORY_NS;
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
