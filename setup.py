from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = next(
    line.split('"')[1]
    for line in (here / "mongo_session_backends" / "__init__.py").read_text().splitlines()
    if line.startswith("__version__")
)

extras = {
    "cachelib": ["cachelib>=0.13"],
    "flask": ["Flask>=2.3", "Flask-Session>=0.8", "cachelib>=0.13"],
    "flask-caching": ["Flask-Caching>=2", "cachelib>=0.13"],
    "beaker": ["Beaker>=1.12"],
    "pyramid": ["pyramid>=2.0"],
    "encryption": ["cryptography>=41"],
    "embedded": ["SecantusDB>=0.7.0b3"],
    "bench": ["matplotlib>=3.7"],
    "litestar": ["litestar>=2.12"],
    "starlette": ["starsessions>=2.2", "starlette>=0.40"],
    "fastapi": ["starsessions>=2.2", "fastapi>=0.110"],
    "aiohttp": ["aiohttp>=3.9", "aiohttp-session>=2.12"],
    "django": ["Django>=5.2"],
}
# Every adapter's framework, so that the API reference can import each module.
adapters = sorted(
    {
        *extras["flask"],
        *extras["flask-caching"],
        *extras["beaker"],
        *extras["pyramid"],
        *extras["encryption"],
        *extras["litestar"],
        *extras["starlette"],
        *extras["fastapi"],
        *extras["aiohttp"],
        *extras["django"],
    }
)
extras["docs"] = sorted({*adapters, "Sphinx>=7", "furo>=2024.1.29"})
# The README's test command installs only this extra: everything the suite
# imports, the benchmark's plot included.
extras["test"] = sorted(
    {
        *adapters,
        *extras["embedded"],
        *extras["bench"],
        "pyramid_beaker>=0.9",
        "WebTest>=3",
        "zope.interface>=6",
        "markupsafe>=2",
        "pytest>=7",
        "pytest-asyncio>=0.24",
        "Flask-Login>=0.6",
        "pytest-aiohttp>=1.0",
        "httpx>=0.27",
    }
)
extras["demo"] = sorted(
    {*extras["embedded"], *extras["flask"], *extras["beaker"], *extras["pyramid"]}
)
extras["release"] = ["build>=1", "twine>=5"]
extras["dev"] = sorted(
    {*extras["test"], *extras["docs"], *extras["release"], "mypy>=1.8", "ruff>=0.5"}
)

setup(
    name="mongo-session-backends",
    version=version,
    description=(
        "MongoDB session and cache backends for cachelib/Flask-Session, Flask-Caching, "
        "Beaker, Pyramid, Django, Litestar, Starlette/FastAPI and aiohttp"
    ),
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    packages=find_packages(include=["mongo_session_backends", "mongo_session_backends.*"]),
    package_data={"mongo_session_backends": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=["pymongo>=4.13"],
    extras_require=extras,
    entry_points={
        "beaker.backends": ["mongodb = mongo_session_backends.beaker:MongoNamespaceManager"],
        "console_scripts": ["mongo-sessions = mongo_session_backends.cli:main"],
    },
    classifiers=[
        "Framework :: Django",
        "Framework :: Flask",
        "Framework :: Pyramid",
        "License :: OSI Approved :: BSD License",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: Session",
    ],
)
