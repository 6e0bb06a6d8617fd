"""The staff pages (工作台): server-rendered Simplified Chinese over the same use cases as the API."""
