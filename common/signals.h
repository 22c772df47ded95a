/* signals.h - SIGTERM/SIGINT as a condition the main thread waits for.
 *
 * sp_signals_init() must run before any thread starts, so that every thread inherits the
 * blocked mask and the signal is only ever taken by sp_signals_wait() in the main thread. */
#ifndef SP_SIGNALS_H
#define SP_SIGNALS_H

void sp_signals_init(void);
/* Makes sp_signals_wait() return `sig` too (e.g. SIGHUP to reload); call it before any thread
 * starts, right after sp_signals_init(). */
void sp_signals_add(int sig);
/* Waits up to `seconds`; returns the signal number that arrived, or 0 on timeout. */
int sp_signals_wait(double seconds);

#endif
