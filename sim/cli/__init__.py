"""Thin command-line front ends: parse, call one library function, print."""
