/* SPDX-License-Identifier: MIT */
/* `tunshim ping` (ping.c), run by the wrapper in a copy of itself that has the library
 * lib preloaded; argv from "ping" on. Returns ping's exit status. */
#ifndef TS_CLI_PING_H
#define TS_CLI_PING_H

int tunshim_ping_preloaded(int argc, char **argv, const char *lib);

#endif
