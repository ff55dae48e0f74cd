#!/bin/sh
echo "thinroot-test-tiny, built with thinroot-test-dep @DEP@"
