/* pause: the first process of every pod sandbox. It holds the pod's namespaces open, reaps the
 * orphans re-parented to it (it is PID 1 when the pod shares its PID namespace), and exits on
 * SIGINT or SIGTERM. Built static (scripts/cluster.sh) into a FROM-scratch image named as the
 * kubelet expects, since no image registry outside this machine is reachable. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        puts("pause (salespipeline)");
        return 0;
    }
    if (getpid() != 1)
        fputs("pause: warning: not running as PID 1\n", stderr);

    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
        sigaction(SIGCHLD, &child, NULL) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;)
        pause();
}
