/* SPDX-License-Identifier: MIT */
#include <string.h>
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/tcp.h"
#include "tcp_sack.h"

#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_SACK 5
#define DUP_THRESH 3 /* segments acknowledged above a hole make it lost (RFC 6675) */
#define RESEND_MAX 64 /* segments moved per ACK: bounds the walk */
#define SCOREBOARD_MAX 8192 /* segments looked at per ACK: 11 MiB of 1368-byte segments */

static u8_t opt_byte(const struct tcp_hdr *hdr, u16_t i, u16_t opt1len, const u8_t *opt2)
{
	return i < opt1len || !opt2 ? ((const u8_t *)(hdr + 1))[i] : opt2[i - opt1len];
}

static u32_t opt_u32(const struct tcp_hdr *hdr, u16_t i, u16_t opt1len, const u8_t *opt2)
{
	u32_t v = 0;

	for (int k = 0; k < 4; k++)
		v = v << 8 | opt_byte(hdr, (u16_t)(i + k), opt1len, opt2);
	return v;
}

static bool covered(const struct ts_tcp_sack *s, u32_t from, u32_t to)
{
	for (unsigned i = 0; i < s->n; i++)
		if (TCP_SEQ_LEQ(s->left[i], from) && TCP_SEQ_GEQ(s->right[i], to))
			return true;
	return false;
}

/* The scoreboard: an ACK carries at most four blocks, the most recent ones, while a
 * window with many holes has many more SACKed ranges. Judging holes by the latest
 * blocks alone took everything outside them for lost: at 1 % loss over 40 ms more
 * segments were resent than sent. So each segment in lwIP's unacked queue that a block
 * covers is marked in its flags (a bit lwIP does not use), and stays marked. Runs before
 * lwIP takes the ACK: what it will free is at or below ackno and does not count. */
static void scoreboard(struct ts_tcp_sack *s, const struct tcp_pcb *pcb, u32_t ackno)
{
	unsigned walked = 0;

	s->held = 0;
	s->high = ackno;
	if (!s->n)
		return; /* no blocks: the peer holds nothing above ackno */
	for (struct tcp_seg *seg = pcb->unacked; seg && walked++ < SCOREBOARD_MAX; seg = seg->next) {
		u32_t seq = lwip_ntohl(seg->tcphdr->seqno), len = TCP_TCPLEN(seg);

		if (!(seg->flags & TS_SEG_SACKED) && len && covered(s, seq, seq + len))
			seg->flags |= TS_SEG_SACKED;
		if ((seg->flags & TS_SEG_SACKED) && TCP_SEQ_GEQ(seq, ackno)) {
			s->held += len;
			if (TCP_SEQ_GT(seq + len, s->high))
				s->high = seq + len;
		}
	}
}

void ts_tcp_sack_parse(struct ts_tcp_sack *s, const struct tcp_pcb *pcb,
		       const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2)
{
	s->n = 0;
	for (u16_t i = 0; i < optlen;) {
		u8_t kind = opt_byte(hdr, i, opt1len, opt2), len;

		if (kind == OPT_EOL)
			break;
		if (kind == OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= optlen || (len = opt_byte(hdr, (u16_t)(i + 1), opt1len, opt2)) < 2 ||
		    i + len > optlen)
			break; /* malformed: lwIP's own parser decides what to do with it */
		if (kind == OPT_SACK)
			for (u16_t b = (u16_t)(i + 2); b + 8 <= i + len && s->n < TS_SACK_BLOCKS; b += 8) {
				s->left[s->n] = opt_u32(hdr, b, opt1len, opt2);
				s->right[s->n] = opt_u32(hdr, (u16_t)(b + 4), opt1len, opt2);
				s->n++;
			}
		i = (u16_t)(i + len);
	}
	s->fresh = true;
	scoreboard(s, pcb, hdr->ackno); /* lwIP has made ackno host order */
}

/* Into lwIP's unsent queue, which is kept sorted, as tcp_rexmit does for the first one;
 * tcp_output sends it and files it back into unacked in order. */
static void requeue(struct tcp_pcb *pcb, struct tcp_seg **link)
{
	struct tcp_seg *seg = *link, **cur = &pcb->unsent;

	*link = seg->next;
	while (*cur && TCP_SEQ_LT(lwip_ntohl((*cur)->tcphdr->seqno), lwip_ntohl(seg->tcphdr->seqno)))
		cur = &(*cur)->next;
	seg->next = *cur;
	*cur = seg;
#if TCP_OVERSIZE
	if (!seg->next)
		pcb->unsent_oversize = 0;
#endif
	/* Not counted in nrtx, which lwIP reads as consecutive timeouts (TCP_MAXRTX of
	 * them abort the connection): one recovery may resend dozens of holes. */
	pcb->rttest = 0; /* no RTT sample from a retransmission (Karn) */
}

/* Resends each hole below the highest SACKed byte once. Returns how many segments. */
static unsigned resend_holes(struct ts_tcp_sack *s, struct tcp_pcb *pcb, u32_t high)
{
	struct tcp_seg **link = &pcb->unacked;
	unsigned moved = 0, walked = 0;

	while (*link && walked++ < SCOREBOARD_MAX && moved < RESEND_MAX) {
		struct tcp_seg *seg = *link;
		u32_t seq = lwip_ntohl(seg->tcphdr->seqno), end = seq + TCP_TCPLEN(seg);

		if (TCP_SEQ_GEQ(seq, high))
			break;
		/* Lost: not held by the peer, not resent yet, with enough acknowledged
		 * above it (the highest SACKed byte is DUP_THRESH segments further). */
		if (TCP_SEQ_GEQ(seq, s->resent_to) && !(seg->flags & TS_SEG_SACKED) &&
		    high - end >= (u32_t)DUP_THRESH * pcb->mss) {
			requeue(pcb, link);
			s->resent_to = end;
			moved++;
			continue;
		}
		link = &seg->next;
	}
	return moved;
}

static void enter(struct ts_tcp_sack *s, struct tcp_pcb *pcb, uint64_t now, u32_t floor)
{
	u32_t flight = pcb->snd_nxt - pcb->lastack, target = flight / 2;

	s->recovering = true;
	s->recover = pcb->snd_nxt;
	s->resent_to = pcb->lastack;
	s->round_at = now;
	/* Half of what was in flight (RFC 5681's ssthresh), once per recovery, but not
	 * below the floor (tcp_cc.h says why). lwIP's fast retransmit, if it ran for this
	 * loss already, has halved the window: then only the floor may raise it. */
	if (target < floor)
		target = floor;
	if (target < 2u * pcb->mss)
		target = 2u * pcb->mss;
	if (!(pcb->flags & TF_INFR) || pcb->ssthresh < target) {
		pcb->ssthresh = target;
		pcb->cwnd = target;
	}
}

/* lwIP's smoothed RTT (in slow-timer ticks, sa holds eight times it) in ns. */
static uint64_t lwip_srtt_ns(const struct tcp_pcb *pcb)
{
	return (uint64_t)(pcb->sa >> 3) * TCP_SLOW_INTERVAL * 1000000ull;
}

bool ts_tcp_sack_recover(struct ts_tcp_sack *s, struct tcp_pcb *pcb, uint64_t now,
			 uint64_t rtt_ns, u32_t floor)
{
	unsigned moved = 0;

	if (!s->fresh)
		return false;
	s->fresh = false;
	if (!(pcb->flags & TF_SACK) || pcb->unacked == NULL || (pcb->flags & TF_RTO)) {
		s->recovering = false; /* nothing in flight, or lwIP's timeout took over */
		return false;
	}
	if (s->recovering && TCP_SEQ_GEQ(pcb->lastack, s->recover))
		s->recovering = false;
	if (!s->recovering && ((pcb->flags & TF_INFR) || s->held >= (u32_t)DUP_THRESH * pcb->mss))
		enter(s, pcb, now, floor);
	if (!s->recovering)
		return false;
	if (lwip_srtt_ns(pcb) > rtt_ns)
		rtt_ns = lwip_srtt_ns(pcb);
	if (now - s->round_at > rtt_ns + rtt_ns / 2) {
		s->resent_to = pcb->lastack; /* what is still missing goes again */
		s->round_at = now;
	}
	if (TCP_SEQ_LT(s->resent_to, pcb->lastack))
		s->resent_to = pcb->lastack;
	/* What the peer holds has left the network: the window may count it (the
	 * SACK version of Reno's inflation by duplicate ACKs). */
	if (pcb->cwnd < pcb->ssthresh + s->held)
		pcb->cwnd = pcb->ssthresh + s->held;
	/* Keeps lwIP's own fast retransmit from halving the window again. */
	tcp_set_flags(pcb, TF_INFR);
	moved = resend_holes(s, pcb, s->high);
	return moved > 0 || pcb->unsent != NULL;
}
