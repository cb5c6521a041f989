#!/bin/sh
# A stand-in for CERTI's billard federate: it joins the federation, moves
# its ball STEPS times (an update to the RTIG each time), reports the
# collisions it sees, then resigns.
#
#   sh billard.sh FIFO NUMBER [STEPS]
fifo=$1
me=$2
steps=${3:-40}
echo "JOIN billard$me" > "$fifo"
echo "Federate billard$me joined"
i=0
while [ "$i" -lt "$steps" ]; do
    i=$((i + 1))
    echo "UPDATE billard$me x=$((i * 7 % 100)) y=$((i * 13 % 100))" > "$fifo"
    if [ $((i % 4)) -eq 0 ]; then
        echo "Collision between Ball $me and Ball $((me % 2 + 1)) at step $i"
    fi
    sleep 0.05
done
echo "RESIGN billard$me" > "$fifo"
echo "Billard $me ended after $steps steps"
