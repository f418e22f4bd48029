// The C API of libpq, as Debian's libpq-dev installs it.
#include <libpq-fe.h>
