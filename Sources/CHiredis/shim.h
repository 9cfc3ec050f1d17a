// hiredis (Debian: libhiredis-dev) for the RESP protocol only: `redisFormatCommandArgv` encodes
// commands, the `redisReader` API parses replies. Its blocking connection API is never used:
// the sockets are SwiftNIO's.
#include <hiredis/hiredis.h>
