/* SPDX-License-Identifier: MIT */
/* The crypto core: known answers for the primitives, then whole handshakes
 * between two in-process identities, then transport data both ways. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "check.h"
#include "crypto.h"
#include "crypto_aead.h"
#include "noise.h"

#define MS 1000000ULL
#define T0 (1000 * 1000 * MS) /* any monotonic time well away from 0 */

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t got = 0;

	if (sodium_hex2bin(out, len, hex, strlen(hex), NULL, &got, NULL) != 0 || got != len)
		memset(out, 0xee, len);
}

/* Expected values: RFC 7693 appendix B ("abc"); HASH(CONSTRUCTION) and
 * HASH(ck || IDENTIFIER) as hard-coded in boringtun; the rest from Python's
 * hashlib.blake2s and hmac modules, an implementation independent of libb2. */
static void test_blake2s_vectors(void)
{
	static const struct {
		const char *in, *key, *out;
	} tab[] = {
		{ "abc", NULL, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982" },
		{ "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", NULL,
		  "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36" },
		{ "abc", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		  "61ba5f165c194692e09d12520cc4c74a" },
		{ "", "000102030405060708090a0b0c0d0e0f", "af4e5d3bb230e9ff9096ca6f7c501f76" },
	};
	uint8_t key[32], want[32], got[32];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		const uint8_t *in = (const uint8_t *)tab[i].in;
		size_t out_len = strlen(tab[i].out) / 2;

		unhex(want, out_len, tab[i].out);
		if (tab[i].key) {
			unhex(key, strlen(tab[i].key) / 2, tab[i].key);
			wgc_mac(got, key, strlen(tab[i].key) / 2, in, strlen(tab[i].in));
		} else {
			wgc_hash(got, in, strlen(tab[i].in));
		}
		CHECK_MEM(got, want, out_len);
	}

	unhex(key, 32, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	unhex(want, 32, "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
	wgc_hash2(got, key, 32, (const uint8_t *)"WireGuard v1 zx2c4 Jason@zx2c4.com", 34);
	CHECK_MEM(got, want, 32);
}

static void test_hmac_kdf_vectors(void)
{
	uint8_t key[100], ck[32], in[32], want[32], t1[32], t2[32], t3[32];
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	unhex(want, 32, "82623be5bc0a391b24dce53e67d028eff92d586de0485ac37822e597d049c74f");
	wgc_hmac(t1, key, 32, (const uint8_t *)"abc", 3);
	CHECK_MEM(t1, want, 32);
	unhex(want, 32, "c1b751501db12b753069a918627b623179be55c8cc7ca5c4e14bdf32274ac656");
	wgc_hmac(t1, key, 100, (const uint8_t *)"abc", 3);
	CHECK_MEM(t1, want, 32);

	unhex(ck, 32, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0x40 + i);
	wgc_kdf(t1, t2, t3, ck, in, sizeof(in));
	unhex(want, 32, "5b263c9127f235a15ebecdd050402881332f942c7ad5251bfecd88dd6f8a76d9");
	CHECK_MEM(t1, want, 32);
	unhex(want, 32, "4717a3de67577baa29ce3559196431ba86bca12383e08e7395e610dd3470c0ab");
	CHECK_MEM(t2, want, 32);
	unhex(want, 32, "2bd6664af56a105b3d5d6db6fbc3d1bfdcc9ed46f21d83132312758f0597e6d3");
	CHECK_MEM(t3, want, 32);

	/* KDF2 with empty input, in place over ck: the transport key derivation. */
	wgc_kdf(ck, t2, NULL, ck, (const uint8_t *)"", 0);
	unhex(want, 32, "bd968725a9177942a8c2e4253d1dde31cf7b19ec001b4a3a3d141cd9d998d3ba");
	CHECK_MEM(ck, want, 32);
	unhex(want, 32, "aab5462b323780fa615bf80ffe469510239ff361575a663968e686a7ae41d693");
	CHECK_MEM(t2, want, 32);
}

/* RFC 7748 section 5.2 (first vector) and 6.1 (Alice and Bob). */
static void test_x25519_vectors(void)
{
	struct noise_static_identity alice, bob;
	uint8_t k[32], u[32], want[32], got[32];

	unhex(k, 32, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
	unhex(u, 32, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
	unhex(want, 32, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
	CHECK_INT(wgc_dh(got, k, u), 0);
	CHECK_MEM(got, want, 32);

	unhex(k, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	CHECK_INT(noise_identity_init(&alice, k), 0);
	unhex(want, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	CHECK_MEM(alice.public_key, want, 32);
	unhex(k, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	CHECK_INT(noise_identity_init(&bob, k), 0);
	unhex(want, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	CHECK_MEM(bob.public_key, want, 32);

	unhex(want, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	CHECK_INT(wgc_dh(got, alice.private_key, bob.public_key), 0);
	CHECK_MEM(got, want, 32);
	CHECK_INT(wgc_dh(got, bob.private_key, alice.public_key), 0);
	CHECK_MEM(got, want, 32);

	/* A low-order point gives an all-zero secret, which must be refused. */
	memset(u, 0, sizeof(u));
	CHECK_INT(wgc_dh(got, alice.private_key, u), -EINVAL);
	u[0] = 1;
	CHECK_INT(wgc_dh(got, alice.private_key, u), -EINVAL);
}

/* The AEAD nonce is 4 zero bytes then the counter in little-endian. */
static void test_aead_nonce(void)
{
	static const uint8_t nonce[12] = { 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t key[32], plain[20], ours[36], ref[36], back[20];

	randombytes_buf(key, sizeof(key));
	randombytes_buf(plain, sizeof(plain));
	wgc_aead_encrypt(ours, plain, sizeof(plain), key, 5, 0x0807060504030201ULL, key);
	crypto_aead_chacha20poly1305_ietf_encrypt(ref, NULL, plain, sizeof(plain), key, 5, NULL,
						  nonce, key);
	CHECK_MEM(ours, ref, sizeof(ref));
	CHECK_INT(wgc_aead_decrypt(back, ours, sizeof(ours), key, 5, 0x0807060504030201ULL, key), 0);
	CHECK_MEM(back, plain, sizeof(plain));
	CHECK_INT(wgc_aead_decrypt(back, ours, sizeof(ours), key, 5, 1, key), -EBADMSG);
	CHECK_INT(wgc_aead_decrypt(back, ours, 15, key, 5, 0, key), -EBADMSG);
}

struct peer {
	struct noise_static_identity id;
	struct noise_handshake hs;
	struct noise_keypair kp;
	uint32_t index;
};

static void peer_init(struct peer *p, uint32_t index)
{
	uint8_t priv[32];

	memset(p, 0, sizeof(*p));
	randombytes_buf(priv, sizeof(priv));
	CHECK_INT(noise_identity_init(&p->id, priv), 0);
	p->index = index;
}

static void peers_init(struct peer *i, struct peer *r, const uint8_t *psk_i, const uint8_t *psk_r)
{
	peer_init(i, 0x11223344);
	peer_init(r, 0xa0b0c0d0);
	CHECK_INT(noise_handshake_init(&i->hs, &i->id, r->id.public_key, psk_i), 0);
	CHECK_INT(noise_handshake_init(&r->hs, &r->id, i->id.public_key, psk_r), 0);
}

/* Keypairs hold libcrypto contexts (crypto_aead.h): a test frees what it derived. */
static void peers_clear(struct peer *i, struct peer *r)
{
	noise_keypair_clear(&i->kp);
	noise_keypair_clear(&r->kp);
	CHECK(!i->kp.send_aead && !i->kp.recv_aead && !r->kp.send_aead && !r->kp.recv_aead);
}

/* The real clock's timestamp moved by some seconds, for later or older initiations. */
static void timestamp_shift(uint8_t ts[NOISE_TIMESTAMP_LEN], int seconds)
{
	uint64_t sec;

	noise_tai64n_now(ts);
	memcpy(&sec, ts, sizeof(sec));
	sec = htobe64(be64toh(sec) + (uint64_t)(int64_t)seconds);
	memcpy(ts, &sec, sizeof(sec));
}

/* Runs initiation and response; returns the first failing step's error. */
static int handshake(struct peer *i, struct peer *r, const uint8_t ts[NOISE_TIMESTAMP_LEN],
		     uint64_t now)
{
	struct msg_initiation init;
	struct msg_response resp;
	struct noise_initiation_result res;
	int ret;

	ret = noise_create_initiation(&i->hs, &i->id, i->index, ts, &init);
	if (!ret)
		ret = noise_consume_initiation(&r->id, &init, &res);
	if (!ret)
		ret = noise_accept_initiation(&r->hs, &res, now);
	if (!ret)
		ret = noise_create_response(&r->hs, r->index, &resp);
	if (!ret)
		ret = noise_consume_response(&i->hs, &i->id, &resp);
	if (!ret)
		ret = noise_derive_keypair(&i->hs, &i->kp, now);
	if (!ret)
		ret = noise_derive_keypair(&r->hs, &r->kp, now);
	sodium_memzero(&res, sizeof(res));
	return ret;
}

static void check_keypairs(const struct peer *i, const struct peer *r)
{
	CHECK(i->kp.valid && r->kp.valid);
	CHECK(i->kp.is_initiator && !r->kp.is_initiator);
	CHECK_MEM(i->kp.send_key, r->kp.recv_key, 32);
	CHECK_MEM(i->kp.recv_key, r->kp.send_key, 32);
	CHECK(memcmp(i->kp.send_key, i->kp.recv_key, 32) != 0);
	CHECK_INT(i->kp.local_index, i->index);
	CHECK_INT(i->kp.remote_index, r->index);
	CHECK_INT(r->kp.local_index, r->index);
	CHECK_INT(r->kp.remote_index, i->index);
	CHECK_INT(i->hs.state, HANDSHAKE_ZEROED);
	CHECK_INT(r->hs.state, HANDSHAKE_ZEROED);
	CHECK(sodium_is_zero(i->hs.chaining_key, 32) && sodium_is_zero(r->hs.chaining_key, 32));
}

static void test_message_layout(void)
{
	struct peer i, r;
	struct msg_initiation init;
	struct msg_response resp;
	struct noise_initiation_result res;
	const uint8_t *b = (const uint8_t *)&init;
	uint8_t ts[NOISE_TIMESTAMP_LEN];

	CHECK_INT(sizeof(init), 148);
	CHECK_INT(sizeof(resp), 92);
	peers_init(&i, &r, NULL, NULL);
	noise_tai64n_now(ts);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 0x04030201, ts, &init), 0);
	CHECK_INT(i.hs.state, HANDSHAKE_CREATED_INITIATION);
	CHECK(b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	CHECK(b[4] == 1 && b[5] == 2 && b[6] == 3 && b[7] == 4);
	CHECK(sodium_is_zero(init.mac1, 16) && sodium_is_zero(init.mac2, 16));

	CHECK_INT(noise_consume_initiation(&r.id, &init, &res), 0);
	CHECK_MEM(res.remote_static, i.id.public_key, 32);
	CHECK_MEM(res.timestamp, ts, sizeof(ts));
	CHECK_INT(res.remote_index, 0x04030201);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0), 0);
	CHECK_INT(r.hs.state, HANDSHAKE_CONSUMED_INITIATION);
	CHECK_INT(noise_create_response(&r.hs, 0x0d0c0b0a, &resp), 0);
	b = (const uint8_t *)&resp;
	CHECK(b[0] == 2 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	CHECK(b[4] == 0x0a && b[7] == 0x0d && b[8] == 0x01 && b[11] == 0x04);
	CHECK(sodium_is_zero(resp.mac1, 16) && sodium_is_zero(resp.mac2, 16));
	CHECK_INT(noise_consume_response(&i.hs, &i.id, &resp), 0);
	CHECK_INT(i.hs.state, HANDSHAKE_CONSUMED_RESPONSE);
	CHECK_INT(i.hs.remote_index, 0x0d0c0b0a);
}

static void test_handshake(const uint8_t *psk)
{
	struct peer i, r;
	uint8_t ts[NOISE_TIMESTAMP_LEN];

	peers_init(&i, &r, psk, psk);
	noise_tai64n_now(ts);
	CHECK_INT(handshake(&i, &r, ts, T0), 0);
	check_keypairs(&i, &r);
	CHECK(i.kp.birth == T0 && r.kp.birth == T0);

	/* A second session between the same peers gets fresh keys. */
	timestamp_shift(ts, 1);
	CHECK_INT(handshake(&i, &r, ts, T0 + 100 * MS), 0);
	check_keypairs(&i, &r);
	CHECK(memcmp(i.kp.send_key, r.kp.send_key, 32) != 0);
	peers_clear(&i, &r);
}

static void test_psk_mismatch(void)
{
	uint8_t psk_a[32], psk_b[32], ts[NOISE_TIMESTAMP_LEN];
	struct peer i, r;

	randombytes_buf(psk_a, sizeof(psk_a));
	memcpy(psk_b, psk_a, sizeof(psk_b));
	psk_b[31] ^= 1;
	peers_init(&i, &r, psk_a, psk_b);
	noise_tai64n_now(ts);
	CHECK_INT(handshake(&i, &r, ts, T0), -EBADMSG);
	/* The failed response leaves the initiation in place for a genuine one. */
	CHECK_INT(i.hs.state, HANDSHAKE_CREATED_INITIATION);

	peers_init(&i, &r, psk_a, NULL);
	CHECK_INT(handshake(&i, &r, ts, T0), -EBADMSG);
}

static void test_wrong_responder_key(void)
{
	struct peer i, r, other;
	struct msg_initiation init;
	struct noise_initiation_result res;
	uint8_t ts[NOISE_TIMESTAMP_LEN];

	peers_init(&i, &r, NULL, NULL);
	peer_init(&other, 7);
	CHECK_INT(noise_handshake_init(&i.hs, &i.id, other.id.public_key, NULL), 0);
	noise_tai64n_now(ts);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 1, ts, &init), 0);
	CHECK_INT(noise_consume_initiation(&r.id, &init, &res), -EBADMSG);
	CHECK(sodium_is_zero((const uint8_t *)&res, sizeof(res)));

	/* Accepting into the handshake of another peer. */
	CHECK_INT(noise_consume_initiation(&other.id, &init, &res), 0);
	CHECK_INT(noise_handshake_init(&other.hs, &other.id, r.id.public_key, NULL), 0);
	CHECK_INT(noise_accept_initiation(&other.hs, &res, T0), -EINVAL);
}

/* Flip one byte anywhere in the authenticated part: every one must fail. */
static void test_tampered_initiation(void)
{
	struct peer i, r;
	struct msg_initiation init, bad;
	struct noise_initiation_result res;
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	size_t off, fails = 0;

	peers_init(&i, &r, NULL, NULL);
	noise_tai64n_now(ts);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 1, ts, &init), 0);
	for (off = 8; off < offsetof(struct msg_initiation, mac1); off++) {
		memcpy(&bad, &init, sizeof(bad));
		((uint8_t *)&bad)[off] ^= 0x80;
		fails += noise_consume_initiation(&r.id, &bad, &res) == -EBADMSG;
	}
	CHECK_INT(fails, offsetof(struct msg_initiation, mac1) - 8);
	memcpy(&bad, &init, sizeof(bad));
	bad.type = htole32(MESSAGE_RESPONSE);
	CHECK_INT(noise_consume_initiation(&r.id, &bad, &res), -EBADMSG);
	memset(bad.unencrypted_ephemeral, 0, 32);
	bad.type = htole32(MESSAGE_INITIATION);
	CHECK_INT(noise_consume_initiation(&r.id, &bad, &res), -EBADMSG);
	randombytes_buf(&bad, sizeof(bad));
	CHECK_INT(noise_consume_initiation(&r.id, &bad, &res), -EBADMSG);
}

static void test_tampered_response(void)
{
	struct peer i, r;
	struct msg_initiation init;
	struct msg_response resp, bad;
	struct noise_initiation_result res;
	uint8_t ts[NOISE_TIMESTAMP_LEN];

	peers_init(&i, &r, NULL, NULL);
	noise_tai64n_now(ts);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, i.index, ts, &init), 0);
	CHECK_INT(noise_consume_initiation(&r.id, &init, &res), 0);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0), 0);
	CHECK_INT(noise_create_response(&r.hs, r.index, &resp), 0);

	memcpy(&bad, &resp, sizeof(bad));
	bad.encrypted_nothing[3] ^= 1;
	CHECK_INT(noise_consume_response(&i.hs, &i.id, &bad), -EBADMSG);
	memcpy(&bad, &resp, sizeof(bad));
	bad.unencrypted_ephemeral[3] ^= 1;
	CHECK_INT(noise_consume_response(&i.hs, &i.id, &bad), -EBADMSG);
	memcpy(&bad, &resp, sizeof(bad));
	bad.receiver_index ^= 1;
	CHECK_INT(noise_consume_response(&i.hs, &i.id, &bad), -EINVAL);

	/* The genuine response still works after the forgeries, once. */
	CHECK_INT(noise_consume_response(&i.hs, &i.id, &resp), 0);
	CHECK_INT(noise_consume_response(&i.hs, &i.id, &resp), -EINVAL);
	CHECK_INT(noise_create_response(&i.hs, 5, &resp), -EINVAL);
	CHECK_INT(noise_derive_keypair(&i.hs, &i.kp, T0), 0);
	CHECK_INT(noise_derive_keypair(&i.hs, &i.kp, T0), -EINVAL);
	noise_keypair_clear(&i.kp);
}

/* Replayed timestamps and initiations closer than 20 ms are refused. */
static void test_initiation_replay_and_flood(void)
{
	struct peer i, r;
	struct msg_initiation init, init2;
	struct noise_initiation_result res;
	uint8_t ts[NOISE_TIMESTAMP_LEN];

	peers_init(&i, &r, NULL, NULL);
	noise_tai64n_now(ts);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 1, ts, &init), 0);
	CHECK_INT(noise_consume_initiation(&r.id, &init, &res), 0);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0), 0);
	CHECK_MEM(r.hs.latest_timestamp, ts, sizeof(ts));

	/* The same message a second later: a replay. */
	CHECK_INT(noise_consume_initiation(&r.id, &init, &res), 0);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0 + 1000 * MS), -EALREADY);
	/* An older timestamp is a replay too. */
	timestamp_shift(ts, -1);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 2, ts, &init2), 0);
	CHECK_INT(noise_consume_initiation(&r.id, &init2, &res), 0);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0 + 1000 * MS), -EALREADY);

	/* A newer one 10 ms after the last accepted: flood; at 20 ms: fine. */
	timestamp_shift(ts, 1);
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 3, ts, &init2), 0);
	CHECK_INT(noise_consume_initiation(&r.id, &init2, &res), 0);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0 + 10 * MS), -EBUSY);
	CHECK_INT(noise_accept_initiation(&r.hs, &res, T0 + 20 * MS), 0);
	CHECK_INT(r.hs.remote_index, 3);
}

static void test_bad_calls(void)
{
	struct peer i, r;
	struct msg_initiation init;
	struct msg_response resp;
	uint8_t zero[32] = { 0 }, ts[NOISE_TIMESTAMP_LEN];

	peers_init(&i, &r, NULL, NULL);
	noise_tai64n_now(ts);
	CHECK_INT(noise_handshake_init(&i.hs, &i.id, zero, NULL), -EINVAL);
	CHECK(sodium_is_zero(i.hs.precomputed_static_static, 32));
	CHECK_INT(noise_create_initiation(&i.hs, &i.id, 1, ts, &init), -EINVAL);
	CHECK_INT(i.hs.state, HANDSHAKE_ZEROED);
	CHECK_INT(noise_create_response(&r.hs, 1, &resp), -EINVAL);
	CHECK_INT(noise_consume_response(&r.hs, &r.id, &resp), -EINVAL);
	CHECK_INT(noise_derive_keypair(&r.hs, &r.kp, T0), -EINVAL);
}

static void test_tai64n(void)
{
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	uint64_t sec, now;
	uint32_t nsec;

	noise_tai64n_now(ts);
	now = (uint64_t)time(NULL);
	memcpy(&sec, ts, 8);
	memcpy(&nsec, ts + 8, 4);
	sec = be64toh(sec);
	nsec = be32toh(nsec);
	CHECK(sec - 0x400000000000000aULL + 1 >= now && sec - 0x400000000000000aULL <= now);
	CHECK_INT(nsec & 0xffffff, 0);
	CHECK(nsec < 1000000000);
}

static void test_transport(const uint8_t *psk)
{
	uint8_t plain[64], back[64], msg[3][16 + 64 + 16], bad[16 + 64 + 16];
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	struct peer i, r;
	size_t k;

	peers_init(&i, &r, psk, psk);
	noise_tai64n_now(ts);
	CHECK_INT(handshake(&i, &r, ts, T0), 0);
	/* Each direction has a context exactly when libcrypto is the choice. */
	CHECK_INT(!!i.kp.send_aead, wgc_aead_impl() == WGC_AEAD_LIBCRYPTO);
	CHECK_INT(!!r.kp.recv_aead, wgc_aead_impl() == WGC_AEAD_LIBCRYPTO);
	randombytes_buf(plain, sizeof(plain));

	/* Counter 0 is the first and is valid; header fields are little-endian. */
	CHECK_INT(noise_seal_data(&i.kp, msg[0], plain, sizeof(plain)), sizeof(msg[0]));
	CHECK(msg[0][0] == 4 && msg[0][1] == 0 && msg[0][2] == 0 && msg[0][3] == 0);
	CHECK(msg[0][4] == 0xd0 && msg[0][7] == 0xa0);
	CHECK(sodium_is_zero(msg[0] + 8, 8));
	CHECK_INT(i.kp.send_counter, 1);

	/* A tampered copy fails without touching the replay window. */
	for (k = 0; k < sizeof(bad); k += 7) {
		memcpy(bad, msg[0], sizeof(bad));
		bad[k] ^= 0x40;
		CHECK(noise_open_data(&r.kp, back, bad, sizeof(bad)) == -EBADMSG);
	}
	CHECK_INT(noise_open_data(&r.kp, back, msg[0], sizeof(msg[0])), sizeof(plain));
	CHECK_MEM(back, plain, sizeof(plain));
	CHECK_INT(noise_open_data(&r.kp, back, msg[0], sizeof(msg[0])), -EALREADY);

	/* Out of order is fine, each once. */
	CHECK_INT(noise_seal_data(&i.kp, msg[1], plain, sizeof(plain)), sizeof(msg[1]));
	CHECK_INT(noise_seal_data(&i.kp, msg[2], plain, sizeof(plain)), sizeof(msg[2]));
	CHECK_INT(noise_open_data(&r.kp, back, msg[2], sizeof(msg[2])), sizeof(plain));
	CHECK_INT(noise_open_data(&r.kp, back, msg[1], sizeof(msg[1])), sizeof(plain));
	CHECK_INT(noise_open_data(&r.kp, back, msg[1], sizeof(msg[1])), -EALREADY);

	/* Wrong lengths. */
	CHECK_INT(noise_open_data(&r.kp, back, msg[0], 0), -EBADMSG);
	CHECK_INT(noise_open_data(&r.kp, back, msg[0], MESSAGE_MINIMUM_LEN - 1), -EBADMSG);
	CHECK_INT(noise_open_data(&r.kp, back, msg[0], sizeof(msg[0]) - 1), -EBADMSG);

	/* The other way, a keepalive: no payload at all. */
	CHECK_INT(noise_seal_data(&r.kp, msg[0], NULL, 0), MESSAGE_MINIMUM_LEN);
	CHECK_INT(noise_open_data(&i.kp, back, msg[0], MESSAGE_MINIMUM_LEN), 0);
	/* The responder's packet to the responder's own keypair does not open. */
	CHECK_INT(noise_seal_data(&r.kp, msg[1], plain, 17), MESSAGE_MINIMUM_LEN + 17);
	CHECK_INT(noise_open_data(&r.kp, back, msg[1], MESSAGE_MINIMUM_LEN + 17), -EBADMSG);
	CHECK_INT(noise_open_data(&i.kp, back, msg[1], MESSAGE_MINIMUM_LEN + 17), 17);
	CHECK_MEM(back, plain, 17);

	/* Exhausted and invalid keypairs. */
	i.kp.send_counter = REJECT_AFTER_MESSAGES;
	CHECK_INT(noise_seal_data(&i.kp, msg[0], plain, 16), -EKEYEXPIRED);
	i.kp.send_counter = REJECT_AFTER_MESSAGES - 1;
	CHECK_INT(noise_seal_data(&i.kp, msg[0], plain, 16), MESSAGE_MINIMUM_LEN + 16);
	CHECK_INT(noise_open_data(&r.kp, back, msg[0], MESSAGE_MINIMUM_LEN + 16), 16);
	CHECK_INT(noise_seal_data(&i.kp, msg[0], plain, 16), -EKEYEXPIRED);
	noise_keypair_clear(&r.kp);
	CHECK(!r.kp.valid && sodium_is_zero(r.kp.recv_key, 32) && !r.kp.recv_aead);
	CHECK_INT(noise_seal_data(&r.kp, msg[0], plain, 16), -EKEYEXPIRED);
	noise_keypair_clear(&i.kp);
	CHECK_INT(noise_open_data(&i.kp, back, msg[1], MESSAGE_MINIMUM_LEN + 17), -EKEYEXPIRED);
}

int main(void)
{
	uint8_t psk[32];

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(psk, sizeof(psk));
	test_blake2s_vectors();
	test_hmac_kdf_vectors();
	test_x25519_vectors();
	test_aead_nonce();
	test_message_layout();
	test_handshake(NULL);
	test_handshake(psk);
	test_psk_mismatch();
	test_wrong_responder_key();
	test_tampered_initiation();
	test_tampered_response();
	test_initiation_replay_and_flood();
	test_bad_calls();
	test_tai64n();
	test_transport(NULL);
	test_transport(psk);
	/* The same through the other implementation of the transport AEAD. */
	if (wgc_aead_impl() == WGC_AEAD_LIBCRYPTO) {
		wgc_aead_select("libsodium", WGC_LIBCRYPTO);
		test_transport(psk);
		wgc_aead_select(NULL, WGC_LIBCRYPTO);
	}
	return check_done("noise");
}
