#!/bin/sh
# A stand-in for CERTI's RTIG (the HLA run-time infrastructure gateway that
# the original DTest drove): federates join the federation and send their
# ball updates through a FIFO; the RTIG says what it reflects. It knows
# nothing of dtest: what links its lines to the federates' is only the FIFO.
#
#   sh rtig.sh FIFO
fifo=$1
rm -f "$fifo"
mkfifo "$fifo" || exit 1
# Open read-write: the open does not wait for a writer, and the FIFO stays
# open between the federates' writes.
exec 3<>"$fifo"
echo "CERTI RTIG up and running"
while read -r what who rest <&3; do
    case $what in
        JOIN) echo "RTIG: federate $who joined the federation" ;;
        UPDATE) echo "RTIG: reflect ball update from $who: $rest" ;;
        RESIGN) echo "RTIG: federate $who resigned" ;;
        *) echo "RTIG: unknown message: $what $who $rest" ;;
    esac
done
