/* ex8_system_mutex — a lock shared by separate programs, that survives the
 * death of its holder.
 *
 * Two programs that share nothing but a name: the first opens the named
 * mutex "ex8-<pid>", takes it, starts an update of the shared record
 * (a bank transfer: money leaves one account, and is about to reach the
 * other) and is killed in the middle (SIGKILL: no cleanup runs). The
 * second opens the same name, and its lock answers CONC_EOWNERDEAD: it
 * holds the lock, it knows the record may be half-updated, it repairs it
 * and marks the mutex consistent. With Python's multiprocessing.Lock the
 * second program would wait forever; with a plain process-shared mutex it
 * would take the lock and never know the data was torn.
 *
 * This program plays both parts: run without arguments it starts itself
 * twice (conc_process_spawn), as "holder" and then as "recoverer".
 *
 * Build and run:  make && build/release/examples/ex8_system_mutex
 */
#include <conc/conc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The shared record: two accounts, and how far an update has got. */
struct bank {
    long a, b;
    int updating; /* 1 while money has left a but not yet reached b */
};

static int open_bank(const char *name, struct bank **out, conc_shm **shm)
{
    char seg[128];
    snprintf(seg, sizeof seg, "%s-bank", name);
    int rc = conc_shm_create(shm, sizeof **out, &(conc_shm_opts){.name = seg, .keep = true});
    if (rc == CONC_EEXIST)
        rc = conc_shm_open(shm, seg);
    if (rc == 0)
        *out = conc_shm_addr(*shm);
    return rc;
}

/* Part 1: takes the lock, starts a transfer, says so, and waits to be killed. */
static int holder(const char *name)
{
    conc_named_mutex *m;
    struct bank *bank;
    conc_shm *shm;
    if (conc_named_mutex_open(&m, name) != 0 || open_bank(name, &bank, &shm) != 0)
        return 1;
    conc_named_mutex_lock(m);
    bank->a = 100;
    bank->b = 0;
    bank->updating = 1;
    bank->a -= 30; /* the money has left a ... */
    printf("holder:    took the lock, moved 30 out of account a (a=%ld, b=%ld), now killed\n",
           bank->a, bank->b);
    fflush(stdout);
    pause(); /* ... and the program dies before it reaches b */
    return 1;
}

/* Part 2: opens the same name; the lock reports the death. */
static int recoverer(const char *name)
{
    conc_named_mutex *m;
    struct bank *bank;
    conc_shm *shm;
    if (conc_named_mutex_open(&m, name) != 0 || open_bank(name, &bank, &shm) != 0)
        return 1;
    int rc = conc_named_mutex_lock_timed(m, 5 * CONC_NSEC_PER_SEC);
    printf("recoverer: lock answered %s (%s)\n", conc_err_name(rc), conc_strerror(rc));
    if (rc != CONC_EOWNERDEAD)
        return 1;
    if (bank->updating) { /* finish the transfer the dead holder started */
        bank->b += 30;
        bank->updating = 0;
    }
    conc_named_mutex_consistent(m);
    printf("recoverer: repaired the record (a=%ld, b=%ld, total %ld), marked it consistent\n",
           bank->a, bank->b, bank->a + bank->b);
    conc_named_mutex_unlock(m);
    rc = conc_named_mutex_lock_timed(m, 0);
    printf("recoverer: the next lock answers %s: the mutex is usable again\n", conc_err_name(rc));
    conc_named_mutex_unlock(m);
    long total = bank->a + bank->b;
    conc_named_mutex_close(m);
    conc_shm_destroy(shm);
    return rc == 0 && total == 100 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "holder") == 0)
        return holder(argv[2]);
    if (argc == 3 && strcmp(argv[1], "recoverer") == 0)
        return recoverer(argv[2]);

    char name[64], bank_seg[80];
    snprintf(name, sizeof name, "ex8-%d", (int)getpid());
    snprintf(bank_seg, sizeof bank_seg, "%s-bank", name);
    printf("two programs share the named mutex \"%s\" and nothing else\n", name);
    fflush(stdout);

    /* The holder, with its stdout on a pipe so we know when it holds the lock. */
    char *holder_argv[] = {argv[0], "holder", name, NULL};
    conc_process *p;
    conc_process_opts o = {.stdio = {{CONC_STDIO_INHERIT}, {CONC_STDIO_PIPE}}};
    if (conc_process_spawn(&p, "/proc/self/exe", holder_argv, NULL, &o) != 0)
        return 1;
    char line[256];
    ssize_t n = read(conc_process_stdio_fd(p, 1), line, sizeof line - 1);
    if (n <= 0)
        return 1;
    line[n] = 0;
    fputs(line, stdout);
    int code;
    conc_process_kill(p);
    conc_process_join(p, &code);
    printf("main:      the holder died with exit code %d (-9: SIGKILL), holding the lock\n", code);
    fflush(stdout);
    conc_process_destroy(p);

    char *recoverer_argv[] = {argv[0], "recoverer", name, NULL};
    if (conc_process_spawn(&p, "/proc/self/exe", recoverer_argv, NULL, NULL) != 0)
        return 1;
    conc_process_join(p, &code);
    conc_process_destroy(p);
    conc_named_mutex_unlink(name);
    conc_shm_unlink_name(bank_seg);
    printf("main:      the recoverer exited with %d\n", code);
    return code;
}
