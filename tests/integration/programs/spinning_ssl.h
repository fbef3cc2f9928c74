/* libspinning_ssl.so: its constructor starts a thread that calls the executable's SSL_write and
 * SSL_read in a loop, so that the process has two threads before the shim's constructor runs. */
#pragma once

/* Stops the thread; returns how many calls it made. */
long spinning_ssl_stop(void);
