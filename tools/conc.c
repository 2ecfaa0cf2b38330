/* The conc command. Today: `conc tour`. */
#include "tour.h"

#include <conc/conc.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: conc COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  tour      the concepts of concurrent programming, demonstrated live\n"
            "            on this machine with measured numbers (conc tour --help)\n"
            "  version   print conc's version\n"
            "\n"
            "conc %s — a concurrency toolkit for C\n",
            conc_version_string());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "tour"))
        return tour_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("conc %s\n", conc_version_string());
        return 0;
    }
    fprintf(stderr, "conc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
