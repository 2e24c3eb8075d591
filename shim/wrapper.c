/* build/tunshim: runs a program with libtunshim.so preloaded and a config set. */
#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "%s: not implemented yet\n", argv[0]);
	return 2;
}
