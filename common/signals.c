/* signals.c - see signals.h. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

static sigset_t stop_set;

void sp_signals_init(void)
{
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    /* A peer closing a socket must be an error code, not the end of the process. */
    signal(SIGPIPE, SIG_IGN);
}

void sp_signals_add(int sig)
{
    sigaddset(&stop_set, sig);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
}

int sp_signals_wait(double seconds)
{
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int sig = sigtimedwait(&stop_set, NULL, &ts);
    return sig > 0 ? sig : 0;
}
