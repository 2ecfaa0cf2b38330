/* A program outside the tree, built against the installed conc with
 * pkg-config and with CMake's find_package: it must compile, link and run. */
#include <conc/conc.h>
#include <stdio.h>

static conc_mutex lock = CONC_MUTEX_INIT;
static int counter;

static int work(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        conc_mutex_lock(&lock);
        counter++;
        conc_mutex_unlock(&lock);
    }
    return *(int *)arg;
}

int main(void)
{
    conc_thread *t[2];
    int ids[2] = {1, 2}, status = 0, sum = 0;
    for (int i = 0; i < 2; i++)
        if (conc_thread_create(&t[i], work, &ids[i], NULL) != 0)
            return 1;
    for (int i = 0; i < 2; i++) {
        if (conc_thread_join(t[i], &status) != 0)
            return 1;
        sum += status;
        conc_thread_destroy(t[i]);
    }
    printf("conc %s: counter %d, statuses %d\n", conc_version_string(), counter, sum);
    return counter == 2000 && sum == 3 && conc_version() == CONC_VERSION_HEX ? 0 : 1;
}
