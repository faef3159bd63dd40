"""Test helpers of the govsign suite: the shared fixtures (``helpers.fixtures``, a pytest plugin)
and the helpers that several test directories use. Test modules import from here, never from
each other."""
